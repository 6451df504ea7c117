"""Convert a folder of masks (0/255, grey levels, colours) to index-label PNGs for training, with
a report of the values found per file and in total and what each became
(``tools/dataset_converters/masks2labels.py``).

How values become classes: :mod:`fcn_plugin.datasets.mask_conversion`. Here: which files
(:func:`list_masks`), the report, and the writing (VOC palette PNGs, atomically).
"""
import json
import os
import os.path as osp
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from ..datasets.mask_conversion import VOID, Converter, MaskError, build_converter, describe
from ..utils.io import atomic_write_text
from ..utils.label_png import save_label_png

IMAGE_EXTS = ('.png', '.bmp', '.tif', '.tiff', '.gif', '.jpg', '.jpeg', '.webp', '.pgm', '.ppm',
              '.pbm')
Log = Optional[Callable[[str], None]]

__all__ = ['convert_masks', 'convert', 'list_masks', 'MaskError', 'IMAGE_EXTS']


def list_masks(src: str,
               dst: str,
               in_suffix: Optional[str] = None,
               out_suffix: str = '.png') -> List[Tuple[str, str]]:
    """``(mask path, output path)`` pairs, sorted; ``dst`` is skipped if it is inside ``src``."""
    if osp.isfile(src):
        if dst.lower().endswith(out_suffix.lower()) and not osp.isdir(dst):
            return [(src, dst)]
        return [(src, osp.join(dst, _out_name(osp.basename(src), in_suffix, out_suffix)))]
    if not osp.isdir(src):
        raise MaskError(f'{src}: no such file or folder')
    pairs = []
    dst_abs = osp.abspath(dst)
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if osp.abspath(osp.join(root, d)) != dst_abs)
        for name in sorted(files):
            if in_suffix is not None:
                if not name.endswith(in_suffix):
                    continue
            elif not name.lower().endswith(IMAGE_EXTS):
                continue
            rel = osp.relpath(osp.join(root, name), src)
            pairs.append((osp.join(root, name),
                          osp.join(dst, osp.dirname(rel), _out_name(name, in_suffix, out_suffix))))
    return pairs


def _out_name(name: str, in_suffix: Optional[str], out_suffix: str) -> str:
    stem = name[:-len(in_suffix)] if in_suffix and name.endswith(in_suffix) else osp.splitext(
        name)[0]
    return stem + out_suffix


def convert_masks(src: str,
                  dst: str,
                  in_suffix: Optional[str] = None,
                  out_suffix: str = '.png',
                  palette: Union[None, str, Sequence] = None,
                  palette_png: Optional[str] = None,
                  void_values: Sequence = (),
                  threshold: Optional[float] = None,
                  mapping: Union[None, Dict[int, int], Sequence[str]] = None,
                  unknown: str = 'error',
                  dry_run: bool = False,
                  per_file: bool = True,
                  report: Optional[str] = None,
                  log: Log = print) -> dict:
    """Convert the masks under ``src`` (a file or a folder, searched recursively) into index
    labels under ``dst``; returns the report of :func:`convert`, also written as JSON to
    ``report`` if given. The options are the tool's flags (see
    :func:`~fcn_plugin.datasets.mask_conversion.build_converter`); ``log`` gets the report's
    lines (``None``: quiet), ``per_file=False`` leaves out the line per file. A mask that cannot
    be converted as asked raises :class:`MaskError` before anything is written."""
    converter = build_converter(palette, palette_png, void_values, threshold, mapping, unknown)
    result = convert(src, dst, converter, in_suffix, out_suffix, dry_run, log, per_file)
    if report:
        atomic_write_text(report, json.dumps(result, indent=1))
    return result


def convert(src: str,
            dst: str,
            converter: Converter,
            in_suffix: Optional[str] = None,
            out_suffix: str = '.png',
            dry_run: bool = False,
            log: Log = print,
            per_file: bool = True) -> dict:
    """Convert the masks under ``src`` into ``dst``; returns the report (also logged):
    ``{'mapping': {value: class}, 'files': {mask: {value: count}}, 'total': {value:
    {'pixels', 'files', 'class'}}, 'outputs': [...], 'num_classes': K, 'notes': [...]}``
    (values are grey levels, or ``'#rrggbb'`` for colours; ``notes``: the ``note:`` lines,
    e.g. why level 255 became void without ``--void-value 255``)."""
    log = log or (lambda line: None)
    if osp.abspath(src) == osp.abspath(dst):
        raise MaskError(f'DST must differ from SRC ({src}): the masks are kept')
    pairs = list_masks(src, dst, in_suffix, out_suffix)
    if not pairs:
        what = (f'ending with {in_suffix!r}'
                if in_suffix else f'image files ({", ".join(IMAGE_EXTS)})')
        raise MaskError(f'{src}: no masks found ({what})')
    found: Dict[int, Dict[str, int]] = {}
    per_mask: Dict[str, Dict[int, int]] = {}
    bar = _progress(len(pairs), 'reading')
    for path, _ in pairs:
        counts = converter.counts(converter.read(path))
        per_mask[path] = counts
        for v, c in counts.items():
            found.setdefault(v, {})[path] = c
        bar.update()
    bar.close()
    table = converter.plan(found)
    show = lambda v: describe(v, converter.colour)  # noqa: E731
    mode = ('colours' if converter.colour else 'grey levels')
    log(f'masks2labels: {len(pairs)} mask(s) in {src} -> {dst} ({mode})')
    if per_file:
        for path, counts in per_mask.items():
            rel = osp.relpath(path, src) if osp.isdir(src) else path
            log(f'  {rel}: ' + ', '.join(f'{show(v)} ({c} px) -> {table[v]}'
                                         for v, c in counts.items()))
    log('total:')
    for v in sorted(found):
        log(f'  {show(v)}: {sum(found[v].values())} px in {len(found[v])} file(s) -> ' +
            ('255 (void)' if table[v] == VOID else f'class {table[v]}'))
    classes = sorted({c for c in table.values() if c != VOID})
    num_classes = classes[-1] + 1 if classes else 0
    notes = [converter.void_note] if converter.void_note else []
    if not converter.colour and 255 in table and table[255] not in (VOID, 1) and len(classes) > 2:
        notes.append(f'level 255 became class {table[255]}; if 255 marks void in these masks, '
                     'rerun with --void-value 255')
    missing = [k for k in range(num_classes) if k not in classes]
    if missing:
        notes.append(f'classes {missing} get no pixel (check --map / --palette)')
    if len(classes) == 1:
        notes.append(f'every labelled pixel became class {classes[0]}: are these the right masks?')
    for note in notes:
        log(f'note: {note}')
    outputs = [out for _, out in pairs]
    if not dry_run:
        bar = _progress(len(pairs), 'writing')
        for path, out in pairs:
            os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
            save_label_png(converter.apply(converter.read(path), table), out)
            bar.update()
        bar.close()
        log(f'wrote {len(outputs)} label PNG(s) under {dst}: classes 0..{num_classes - 1} '
            f'(num_classes = {num_classes}), 255 = void')
    else:
        log(f'dry run: nothing written (num_classes would be {num_classes})')
    return dict(
        mapping={show(v): table[v]
                 for v in sorted(table)},
        files={
            p: {
                show(v): c
                for v, c in counts.items()
            }
            for p, counts in per_mask.items()
        },
        total={
            show(v):
            dict(pixels=sum(found[v].values()), files=len(found[v]), **{'class': table[v]})
            for v in sorted(found)
        },
        outputs=[] if dry_run else outputs,
        num_classes=num_classes,
        notes=notes)


class _NoBar:

    def update(self, n=1):
        pass

    def close(self):
        pass


def _progress(total: int, desc: str):
    if total < 50 or not sys.stderr.isatty():
        return _NoBar()
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit='mask', dynamic_ncols=True)
