"""Convert masks (0/255, grey levels, colours) to index-label PNGs for training.

    python tools/dataset_converters/masks2labels.py SRC DST [options]

A label for training holds one class index per pixel: ``0..K-1``, and 255 for void (ignored by
the loss and the metrics). Masks as most tools save them are not that: a binary mask saved as
0/255 would make every foreground pixel void, and the model would learn nothing but background
(loss ~0, mIoU 100). This writes index labels (VOC palette PNGs, atomically) and reports the
values it found per file and in total, and what each became.

SRC is a mask file or a folder, searched recursively (every image file, or only the names ending
with ``--in-suffix``); DST is the output folder, where each mask becomes ``<name><--out-suffix>``
at the same relative path (``--in-suffix _mask.png``: ``a/0001_mask.png`` -> ``a/0001.png``),
or, for a single SRC file, a ``.png`` path. DST must not be SRC (the masks are kept).

Grey masks (single-channel, or RGB with R = G = B; the default):

    masks2labels.py masks/ labels/                  # 0/255 -> 0/1, 0/1 kept, 0/128/255 -> 0/1/2
    masks2labels.py masks/ labels/ --void-value 128 # level 128 (a "don't care" band) -> 255
    masks2labels.py masks/ labels/ --threshold 128  # anti-aliased or JPEG masks: >= 128 -> 1
    masks2labels.py masks/ labels/ --map 0:0 100:1 200:2 255:255

By default the grey levels found in ALL the masks become classes 0, 1, ... in ascending order
(levels 0 and 255 only: 0 -> 0, 255 -> 1, even in a file that holds one of them), except those
given by ``--void-value``, which become 255.

Colour masks (one colour per class):

    masks2labels.py masks/ labels/ --palette 0,0,0 255,0,0 0,255,0     # class i: i-th colour
    masks2labels.py masks/ labels/ --palette-png some_voc_label.png    # an indexed PNG's palette
    masks2labels.py masks/ labels/ --palette voc --void-value 224,224,192

A colour not in the palette stops the conversion (``--unknown void`` makes it void,
``--unknown nearest`` takes the nearest palette colour: anti-aliased edges).

``--dry-run`` only reports; ``--report FILE.json`` also writes the report as JSON. Then point
the dataset's ``seg_map_path`` at DST and set ``num_classes`` (binary segmentation is 2 classes:
softmax over background and foreground, as in the FCN paper).
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # bare checkout
from fcn_plugin.datasets.label_checks import value_counts  # noqa: E402
from fcn_plugin.utils.io import atomic_write_text  # noqa: E402
from fcn_plugin.utils.label_png import save_label_png, voc_palette  # noqa: E402

IMAGE_EXTS = ('.png', '.bmp', '.tif', '.tiff', '.gif', '.jpg', '.jpeg', '.webp', '.pgm', '.ppm',
              '.pbm')
VOID = 255


class MaskError(ValueError):
    """A mask that cannot be converted as asked (names the file and the fix)."""


# ------------------------------------------------------------------------------ listing files
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


# ------------------------------------------------------------------------------ reading masks
def read_grey(path: str) -> np.ndarray:
    """A single-channel mask as an integer ``(H, W)`` array (an indexed PNG: its indices; RGB
    with R = G = B: one channel). Colour masks raise :class:`MaskError`."""
    with Image.open(path) as img:
        mode = img.mode
        if mode in ('LA', 'PA'):
            img = img.getchannel(0)
        arr = np.array(img)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.ndim == 3:
        rgb = arr[..., :3]
        if (rgb == rgb[..., :1]).all():
            return rgb[..., 0]
        raise MaskError(f'{path}: a colour mask ({mode}): give the colour of each class with '
                        '--palette R,G,B ... or --palette-png FILE')
    return arr


def read_colour(path: str) -> np.ndarray:
    """A mask as ``(H, W, 3)`` uint8 RGB (an indexed PNG: the colours of its palette)."""
    with Image.open(path) as img:
        if img.mode != 'RGB':
            img = img.convert('RGB')
        return np.array(img)


def colour_key(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def key_colour(key: int) -> Tuple[int, int, int]:
    return (key >> 16) & 255, (key >> 8) & 255, key & 255


def colour_counts(rgb: np.ndarray) -> Dict[int, int]:
    unique, counts = np.unique(colour_key(rgb).ravel(), return_counts=True)
    return {int(k): int(c) for k, c in zip(unique, counts)}


# ------------------------------------------------------------------------------ palettes
def parse_colour(text: str) -> Tuple[int, int, int]:
    text = text.strip()
    if text.startswith('#') and len(text) == 7:
        return tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))
    parts = text.split(',')
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) < 256 for p in parts):
        raise MaskError(f'{text!r}: a colour is R,G,B (0-255 each) or #rrggbb')
    return tuple(int(p) for p in parts)


def palette_from_png(path: str) -> List[Tuple[int, int, int]]:
    """The palette of an indexed (mode P) PNG, entry i = the colour of index i."""
    with Image.open(path) as img:
        if img.mode != 'P':
            raise MaskError(f'--palette-png {path}: not an indexed (palette) image but {img.mode}')
        flat = img.getpalette() or []
    return [tuple(flat[i:i + 3]) for i in range(0, len(flat) - 2, 3)]


# ------------------------------------------------------------------------------ conversion
class Converter:
    """Map mask values (grey levels or colours) to class indices; see the module docstring."""

    def __init__(self,
                 palette: Optional[Sequence[Tuple[int, int, int]]] = None,
                 void_values: Sequence = (),
                 threshold: Optional[float] = None,
                 mapping: Optional[Dict[int, int]] = None,
                 unknown: str = 'error',
                 max_classes: int = 64):
        self.colour = palette is not None
        self.void = set(void_values)
        self.threshold = threshold
        self.mapping = dict(mapping) if mapping else None
        self.unknown = unknown
        self.max_classes = max_classes
        self.table: Dict[int, int] = {}
        if self.colour:
            for index, c in enumerate(palette):
                self.table.setdefault(int(colour_key(np.array(c))), index)
            self.palette_keys = np.array(sorted(self.table))
            for c in self.void:
                self.table[int(colour_key(np.array(c)))] = VOID

    def read(self, path: str) -> np.ndarray:
        return read_colour(path) if self.colour else read_grey(path)

    def counts(self, mask: np.ndarray) -> Dict[int, int]:
        return colour_counts(mask) if self.colour else value_counts(mask)

    def plan(self, found: Dict[int, Dict[str, int]]) -> Dict[int, int]:
        """The value -> class table for every value ``found`` (``{value: {file: count}}``)."""
        values = sorted(found)
        if self.colour:
            table = {}
            for v in values:
                if v in self.table:
                    table[v] = self.table[v]
                elif self.unknown == 'void':
                    table[v] = VOID
                elif self.unknown == 'nearest':
                    colours = np.array([key_colour(int(k)) for k in self.palette_keys])
                    d = ((colours - np.array(key_colour(v)))**2).sum(1)
                    table[v] = self.table[int(self.palette_keys[int(d.argmin())])]
                else:
                    files = sorted(found[v])
                    raise MaskError(
                        f'colour {key_colour(v)} is not in the palette ({sum(found[v].values())} '
                        f'px in {len(files)} file(s), e.g. {files[0]}): add it to --palette, '
                        'or --void-value R,G,B it, or --unknown void / --unknown nearest')
            return table
        table = {v: VOID for v in values if v in self.void}
        rest = [v for v in values if v not in self.void]
        if self.mapping is not None:
            for v in rest:
                if v not in self.mapping:
                    files = sorted(found[v])
                    raise MaskError(f'value {v} has no --map entry ({len(files)} file(s), e.g. '
                                    f'{files[0]}); add {v}:CLASS')
                table[v] = self.mapping[v]
        elif self.threshold is not None:
            table.update({v: int(v >= self.threshold) for v in rest})
        elif set(rest) <= {0, 255}:
            table.update({v: int(v == 255) for v in rest})
        else:
            if len(rest) > self.max_classes:
                raise MaskError(
                    f'{len(rest)} grey levels found ({rest[0]}..{rest[-1]}): anti-aliased edges '
                    'or JPEG-compressed masks? Use --threshold T for a binary mask (level >= T '
                    'is foreground), or --map VALUE:CLASS ...')
            table.update({v: i for i, v in enumerate(rest)})
        bad = {v: c for v, c in table.items() if not 0 <= c <= 255}
        if bad:
            raise MaskError(f'classes must be 0..254 (255 is void): {bad}')
        return table

    def apply(self, mask: np.ndarray, table: Dict[int, int]) -> np.ndarray:
        keys = colour_key(mask) if self.colour else mask.astype(np.int64)
        values = np.array(sorted(table), dtype=np.int64)
        classes = np.array([table[v] for v in values], dtype=np.uint8)
        pos = np.searchsorted(values, keys)
        return classes[np.clip(pos, 0, len(values) - 1)]


def _describe(value: int, colour: bool) -> str:
    return ('#%02x%02x%02x' % key_colour(value)) if colour else str(value)


def convert(src: str,
            dst: str,
            converter: Converter,
            in_suffix: Optional[str] = None,
            out_suffix: str = '.png',
            dry_run: bool = False,
            log=print,
            per_file: bool = True) -> dict:
    """Convert the masks under ``src`` into ``dst``; returns the report (also logged):
    ``{'mapping': {value: class}, 'files': {mask: {value: count}}, 'total': {value:
    {'pixels', 'files', 'class'}}, 'outputs': [...], 'num_classes': K}`` (values are grey
    levels, or ``'#rrggbb'`` for colours)."""
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
    show = lambda v: _describe(v, converter.colour)  # noqa: E731
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
    if not converter.colour and 255 in table and table[255] not in (VOID, 1) and len(classes) > 2:
        log(f'note: level 255 became class {table[255]}; if 255 marks void in these masks, '
            'rerun with --void-value 255')
    missing = [k for k in range(num_classes) if k not in classes]
    if missing:
        log(f'note: classes {missing} get no pixel (check --map / --palette)')
    if len(classes) == 1:
        log(f'note: every labelled pixel became class {classes[0]}: are these the right masks?')
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
        num_classes=num_classes)


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


# ------------------------------------------------------------------------------ command line
def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='a mask file or a folder of masks (searched recursively)')
    parser.add_argument('dst', help='the output folder (or .png file for a single mask)')
    parser.add_argument(
        '--in-suffix',
        help='only masks whose names end with this, which is '
        'replaced by --out-suffix (default: every image file, extension replaced)')
    parser.add_argument('--out-suffix', default='.png', help='output name ending (.png)')
    parser.add_argument(
        '--palette',
        nargs='+',
        metavar='R,G,B',
        help="colour masks: the colour of class 0, 1, ... (or 'voc')")
    parser.add_argument(
        '--palette-png',
        metavar='FILE',
        help='colour masks: the palette of this indexed PNG (index i = class i)')
    parser.add_argument(
        '--void-value',
        nargs='+',
        default=[],
        metavar='V',
        help='grey levels (or R,G,B colours) that become 255, void')
    parser.add_argument(
        '--threshold', type=float, help='grey masks: level >= T is class 1, below is class 0')
    parser.add_argument(
        '--map',
        nargs='+',
        metavar='VALUE:CLASS',
        help='grey masks: explicit value -> class table (255 = void)')
    parser.add_argument(
        '--unknown',
        choices=['error', 'void', 'nearest'],
        default='error',
        help='colour masks: a colour not in the palette stops (error), is void, '
        'or takes the nearest palette colour')
    parser.add_argument('--dry-run', action='store_true', help='report only, write nothing')
    parser.add_argument('--quiet', action='store_true', help='totals only, no line per file')
    parser.add_argument('--report', metavar='FILE.json', help='also write the report as JSON')
    return parser.parse_args(argv)


def build_converter(args) -> Converter:
    if args.palette and args.palette_png:
        raise MaskError('give --palette or --palette-png, not both')
    palette = None
    if args.palette_png:
        palette = palette_from_png(args.palette_png)
    elif args.palette:
        palette = ([tuple(c) for c in voc_palette().tolist()]
                   if args.palette == ['voc'] else [parse_colour(c) for c in args.palette])
    if palette is not None and (args.threshold is not None or args.map):
        raise MaskError('--threshold and --map are for grey masks, not with a palette')
    if palette is not None:
        void = [parse_colour(v) for v in args.void_value]
    else:
        if not all(v.isdigit() for v in args.void_value):
            raise MaskError(f'--void-value {args.void_value}: grey levels are integers (R,G,B '
                            'colours need --palette)')
        void = [int(v) for v in args.void_value]
    mapping = None
    if args.map:
        try:
            mapping = {int(a): int(b) for a, b in (m.split(':') for m in args.map)}
        except ValueError:
            raise MaskError(f'--map {args.map}: entries are VALUE:CLASS, e.g. 255:1') from None
    return Converter(palette, void, args.threshold, mapping, args.unknown)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        report = convert(
            args.src,
            args.dst,
            build_converter(args),
            args.in_suffix,
            args.out_suffix,
            args.dry_run,
            per_file=not args.quiet)
    except MaskError as error:
        print(f'masks2labels: {error}', file=sys.stderr)
        return 1
    if args.report:
        atomic_write_text(args.report, json.dumps(report, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
