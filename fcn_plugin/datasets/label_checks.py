"""Split-level label checks: labels that cannot be right as a whole, judged from the label values
of many files (:func:`analyze_labels`): a split whose labels are all void, labels that look like
binary masks saved as 0/255 (255 is void: every foreground pixel would be ignored, the loss is
~0 and the mIoU 100) or as two other grey levels, colour labels, and classes without pixels.
Each finding names files and the fix (``tools/dataset_converters/masks2labels.py``). And two
findings about the list and the files rather than the label values: samples listed more than once
(:func:`duplicate_findings`) and images or labels carrying an EXIF orientation tag
(:func:`orientation_findings`: images are loaded turned as the tag says, labels as stored; an
image turned by 180 degrees passes every size check).

``tools/check_dataset.py`` runs them over every file (counted by :func:`~.scan.scan_dataset`),
``DataCheckHook`` over a bounded sample read by :func:`count_labels` before the first iteration.
"""
import os.path as osp
import time
from collections import Counter
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .file_checks import EXIF_ORIENTATION, ORIENTATIONS, inspect_header, read_orientation
from .transforms import CONVERT_CMD, CheckSegFiles, image_orientation_of

COLOUR = -1  # value_counts key of a label that is not single-channel (a colour image)


def value_counts(label: np.ndarray) -> Dict[int, int]:
    """``{value: pixel count}`` of a label map."""
    values = np.asarray(label).ravel()
    if values.dtype == np.uint8:
        counts = np.bincount(values, minlength=256)
        return {int(v): int(counts[v]) for v in np.flatnonzero(counts)}
    unique, counts = np.unique(values, return_counts=True)
    return {int(v): int(c) for v, c in zip(unique, counts)}


class BadDatasetError(ValueError):
    """A whole split's labels cannot be right (all void, 0/255 binary masks, colours...)."""


class LabelFinding(NamedTuple):
    """A split-level problem: ``level`` is ``'error'`` or ``'warning'``; ``kind`` one of
    ``all_void``, ``binary_mask``, ``grey_levels``, ``colour``, ``bad_values``,
    ``binary_files``, ``no_pixels`` (:func:`analyze_labels`), ``duplicates``
    (:func:`duplicate_findings`), ``exif_images``, ``exif_labels``
    (:func:`orientation_findings`)."""
    level: str
    kind: str
    message: str
    files: Tuple[str, ...] = ()


def _folders(files: Sequence[str]) -> str:
    dirs = sorted({osp.dirname(f) or '.' for f in files})
    if not dirs:
        return '.'
    return dirs[0] if len(dirs) == 1 else (osp.commonpath(dirs) or '.')


def _examples(files: Sequence[str], n: int = 3) -> str:
    return ', '.join(files[:n]) + (f' (and {len(files) - n} more)' if len(files) > n else '')


def _fix(files: Sequence[str]) -> str:
    """The converter command for the folder of ``files`` (a phrase, lower case)."""
    src = _folders(files)
    return (f'convert the masks to index labels (0..K-1, 255 void): {CONVERT_CMD} {src} '
            f'{src.rstrip("/")}_labels, and point the dataset\'s seg_map_path at the new '
            'folder (binary segmentation is num_classes=2: 0 background, 1 foreground)')


def analyze_labels(counts: Dict[str, Dict[int, int]],
                   num_classes: Optional[int],
                   ignore_index: int = 255,
                   classes: Optional[Sequence[str]] = None,
                   split: str = 'train',
                   total_files: Optional[int] = None) -> List[LabelFinding]:
    """Judge a split from the label values of its files (``{path: {value: count}}``, as
    :func:`value_counts`; ``total_files`` if only a sample was counted).

    Errors: every pixel void (``all_void``); only 0 and ``ignore_index`` in every file
    (``binary_mask``: masks saved as 0/255, whose foreground is void); exactly two values of
    which one is no class (``grey_levels``: masks saved as e.g. 0/128); colour labels
    (``colour``); values outside ``0..num_classes-1``/``ignore_index`` (``bad_values``).
    Warnings: single files that look like 0/255 masks in a split that otherwise is not
    (``binary_files``); classes without pixels (``no_pixels``).
    """
    findings: List[LabelFinding] = []
    files = sorted(counts)
    if not files:
        return findings
    checked = len(files)
    where = (f'{split} split ({_folders(files)}, {checked} label files checked' +
             (f' of {total_files})' if total_files and total_files > checked else ')'))
    colour = [f for f in files if COLOUR in counts[f]]
    if colour:
        findings.append(
            LabelFinding(
                'error', 'colour',
                (f'{where}: {len(colour)} label file(s) are colour images, not one class index per '
                 f'pixel: {_examples(colour)}. Convert them with a palette (the colour of each '
                 f'class, in class order): {CONVERT_CMD} {_folders(colour)} '
                 f'{_folders(colour).rstrip("/")}_labels --palette R,G,B R,G,B ... (or '
                 '--palette-png a_palette_label.png), and point seg_map_path at the new folder'),
                tuple(colour)))
    single = [f for f in files if COLOUR not in counts[f]]
    if not single:
        return findings
    total: Dict[int, int] = {}
    for f in single:
        for v, c in counts[f].items():
            total[v] = total.get(v, 0) + c
    values = sorted(total)
    valid = (lambda v: 0 <= v < num_classes) if num_classes else (lambda v: v != ignore_index)
    labelled = sum(c for v, c in total.items() if valid(v))
    shown = ', '.join(f'{v}: {c} px'
                      for v, c in sorted(total.items())[:8]) + (', ...' if len(total) > 8 else '')
    if set(values) == {0, ignore_index}:
        findings.append(
            LabelFinding(
                'error', 'binary_mask',
                (f'{where}: the labels hold only the values 0 and {ignore_index} ({shown}): binary '
                 f'masks saved as 0/{ignore_index}? {ignore_index} is void (ignored), so every '
                 'foreground pixel would be ignored: the model would learn background only, with a '
                 f'loss near 0 and mIoU 100. Fix: {_fix(single)}'), tuple(single)))
        return findings
    if labelled == 0:
        findings.append(
            LabelFinding(
                'error', 'all_void',
                (f'{where}: every pixel is void or no class ({shown}): there is nothing to train '
                 f'on or to evaluate (the loss would be 0). If these values mark objects, '
                 f'{_fix(single)}'), tuple(single)))
        return findings
    outside = [v for v in values if not valid(v) and v != ignore_index]
    if len(values) == 2 and outside:
        findings.append(
            LabelFinding(
                'error', 'grey_levels',
                (f'{where}: the labels hold exactly two values, {values[0]} and {values[1]} '
                 f'({shown}), and {", ".join(map(str, outside))} is no class of the '
                 f'{num_classes}: binary masks saved as two grey levels? Fix: {_fix(single)}'),
                tuple(single)))
        return findings
    if outside:
        bad = [f for f in single if any(v in counts[f] for v in outside)]
        findings.append(
            LabelFinding(
                'error', 'bad_values',
                (f'{where}: label values {", ".join(map(str, outside[:10]))} are outside '
                 f'0..{(num_classes or 1) - 1} and {ignore_index} (void) in {len(bad)} file(s): '
                 f'{_examples(bad)}. Fix num_classes/classes, or convert the labels to class '
                 f'indices ({CONVERT_CMD} SRC DST, see --map)'), tuple(bad)))
    if ignore_index != 0:
        suspicious = [
            f for f in single
            if set(counts[f]) == {0, ignore_index} and counts[f][ignore_index] >= 0.25 *
            sum(counts[f].values())
        ]
        if suspicious:
            findings.append(
                LabelFinding(
                    'warning', 'binary_files',
                    (f'{where}: {len(suspicious)} file(s) hold only 0 and {ignore_index} with a '
                     f'large void area, like binary masks saved as 0/{ignore_index}: '
                     f'{_examples(suspicious)}. If they are, {_fix(suspicious)}'),
                    tuple(suspicious)))
    if num_classes:
        missing = [k for k in range(num_classes) if not total.get(k)]
        if missing:
            names = ', '.join(f'{k} {classes[k]!r}' if classes and k < len(classes) else str(k)
                              for k in missing[:12]) + (', ...' if len(missing) > 12 else '')
            findings.append(
                LabelFinding('warning', 'no_pixels', (
                    f'{where}: {len(missing)} of {num_classes} classes have no pixels: {names}. '
                    'They cannot be learnt from this split, and their IoU is NaN (left out of the '
                    'means) when evaluated on it; check num_classes, the class names and the label '
                    'values' + (' (only a sample of the files was checked)'
                                if total_files and total_files > checked else '')), ()))
    return findings


def _entry(leaf, path: str) -> str:
    """A sample's name as its split file lists it (its image path relative to the image folder,
    without ``img_suffix``), else its image path."""
    img_dir = (getattr(leaf, 'data_prefix', None) or {}).get('img_path')
    suffix = getattr(leaf, 'img_suffix', '') or ''
    if not img_dir or not path.startswith(img_dir.rstrip('/') + '/'):
        return path
    name = osp.relpath(path, img_dir)
    return name[:-len(suffix)] if suffix and name.endswith(suffix) else name


def duplicate_findings(dataset, split: str = 'train') -> List[LabelFinding]:
    """A warning (``duplicates``) if the (wrapped) dataset lists an image more than once: each
    is trained on, and counted in the metrics, as often as it is listed. Names the split files,
    the repeated entries and how often each is listed."""
    paths, names, sources = [], {}, []
    for leaf in leaf_datasets(dataset):
        if hasattr(leaf, 'full_init'):
            leaf.full_init()
        source = getattr(leaf, 'ann_file', '') or (getattr(leaf, 'data_prefix', None) or {}).get(
            'img_path', '')
        for i in range(len(leaf)):
            path = leaf.get_data_info(i).get('img_path')
            if path:
                paths.append(path)
                names.setdefault(path, _entry(leaf, path))
                if source and source not in sources:
                    sources.append(source)
    repeated = [(p, n) for p, n in Counter(paths).most_common() if n > 1]
    if not repeated:
        return []
    extra = sum(n - 1 for _, n in repeated)
    shown = ', '.join(f'{names[p]} ({n} times)'
                      for p, n in repeated[:5]) + (', ...' if len(repeated) > 5 else '')
    listed_by = ' and '.join(sources) or 'the dataset'
    return [
        LabelFinding(
            'warning', 'duplicates',
            (f'{split} split: {len(repeated)} sample(s) are listed more than once by {listed_by} '
             f'({extra} extra entries of {len(paths)}): {shown}. Each is trained on, and counted '
             'in the metrics, as often as it is listed: remove the repeated lines, unless they '
             'are meant (oversampling)'), tuple(p for p, _ in repeated))
    ]


def orientation_findings(images: Dict[str, Optional[int]],
                         labels: Dict[str, Optional[int]],
                         split: str = 'train',
                         image_orientation: str = 'exif',
                         total_files: Optional[int] = None) -> List[LabelFinding]:
    """Warnings for images (``exif_images``) and labels (``exif_labels``) whose EXIF
    orientation tag is not 1 (``images``, ``labels``: ``{path: orientation or None}`` of the
    files read; ``total_files`` if only a sample was read).

    Images are loaded turned as the tag says (``image_orientation='exif'``, mmcv's
    ``LoadImageFromFile`` by default), so their labels must be drawn on the turned image: a label
    drawn on the stored pixels fails the size check if the tag turns the image by 90 degrees
    (5-8), but not if it turns it by 180 degrees or flips it (2-4). Labels are read as stored
    (``LoadAnnotations`` ignores the tag), unlike viewers."""
    findings = []
    tag = f'an EXIF orientation tag ({EXIF_ORIENTATION}) other than 1'

    def listed(files: Dict[str, Optional[int]]) -> Tuple[List[str], str]:
        tagged = sorted(p for p, o in files.items() if o not in (None, 1))
        checked = (f'{len(tagged)} of {len(files)} ' if not total_files or total_files <= len(files)
                   else f'{len(tagged)} of {len(files)} checked (of {total_files}) ')
        shown = ', '.join(
            f'{p} ({files[p]}: {ORIENTATIONS[files[p]]})'
            for p in tagged[:3]) + (f' (and {len(tagged) - 3} more)' if len(tagged) > 3 else '')
        return tagged, f'{checked}%s carry {tag}: {shown}'

    tagged, what = listed(images)
    if tagged and image_orientation == 'stored':
        findings.append(
            LabelFinding(
                'warning', 'exif_images',
                (f'{split} split: ' + what % 'images' + '. This pipeline\'s image loader ignores '
                 'the tag (color_type ..._ignore_orientation or unchanged): they are loaded as '
                 'stored, not as viewers show them: their labels must be drawn on the stored '
                 'pixels'), tuple(tagged)))
    elif tagged:
        findings.append(
            LabelFinding(
                'warning', 'exif_images',
                (f'{split} split: ' + what % 'images' + '. They are loaded rotated as their EXIF '
                 'tag says: their labels must be drawn on the rotated image, as viewers show it '
                 '(LoadImageFromFile, tools/infer.py and mmcv.imread apply the tag; labels are '
                 'read as stored). A label drawn on the stored pixels fails the size check where '
                 'the tag turns the image by 90 degrees (5-8; unless it is square), but passes '
                 'every check where it turns it by 180 degrees or flips it (2-4): look at these '
                 'samples, or remove the tags (docs/own_data.md, EXIF orientation)'),
                tuple(tagged)))
    tagged, what = listed(labels)
    if tagged:
        findings.append(
            LabelFinding(
                'warning', 'exif_labels',
                (f'{split} split: ' + what % 'label files' + '. Labels are read as stored '
                 '(LoadAnnotations ignores the tag), while viewers and tools that apply it show '
                 'them turned: check that each was drawn on its image as that image is loaded, '
                 'and remove the tag (e.g. exiftool -n -Orientation=1 FILE)'), tuple(tagged)))
    return findings


def leaf_datasets(dataset) -> list:
    """The segmentation datasets inside wrappers (ValidatedDataset, Concat, Repeat...)."""
    inner = getattr(dataset, 'datasets', None)
    if isinstance(inner, (list, tuple)):
        return [d for sub in inner for d in leaf_datasets(sub)]
    if hasattr(dataset, 'dataset') and not hasattr(dataset, 'load_data_list'):
        return leaf_datasets(dataset.dataset)
    return [dataset]


def count_labels(
    dataset,
    max_files: Optional[int] = 1000,
    time_limit: Optional[float] = 30.0,
    exif_tags: Optional[Dict[str, Dict[str, Optional[int]]]] = None
) -> Tuple[Dict[str, Dict[int, int]], int]:
    """Value counts of a dataset's label files, read as ``LoadAnnotations`` reads them (with
    the dataset's ``reduce_zero_label`` and ``label_map``), images undecoded. ``exif_tags``, if
    given, is filled as by :func:`~.scan.scan_dataset` with the EXIF orientation of each label
    read and of its image (from the image's header only).

    All files if there are at most ``max_files``, else ``max_files`` evenly spread over the
    dataset; stops after ``time_limit`` seconds. Unreadable files, and those whose header
    declares more pixels than the dataset's ``CheckSegFiles(max_pixels)`` allows, are left out
    undecoded (the per-sample checks name them). Returns ``(counts, number of distinct label
    files in the dataset)``.
    """
    from mmseg.datasets.transforms import LoadAnnotations
    infos = {}  # each label file once (a split may list a sample twice)
    for leaf in leaf_datasets(dataset):
        if hasattr(leaf, 'full_init'):
            leaf.full_init()
        check = next((t for t in getattr(getattr(leaf, 'pipeline', None), 'transforms', [])
                      if isinstance(t, CheckSegFiles)), CheckSegFiles())
        for i in range(len(leaf)):
            info = leaf.get_data_info(i)
            if info.get('seg_map_path'):
                infos.setdefault(info['seg_map_path'], dict(info, max_pixels=check.max_pixels))
    infos = list(infos.values())
    total = len(infos)
    if max_files is not None and total > max_files:
        infos = [infos[int(i)] for i in np.linspace(0, total - 1, max_files)]
    counts: Dict[str, Dict[int, int]] = {}
    start = time.monotonic()
    for info in infos:
        if time_limit is not None and time.monotonic() - start > time_limit:
            break
        results = dict(
            seg_map_path=info['seg_map_path'],
            seg_fields=[],
            reduce_zero_label=info.get('reduce_zero_label', False),
            label_map=info.get('label_map'))
        try:
            header = inspect_header(info['seg_map_path'], info['max_pixels'])
            if header.problem:
                continue  # not decoded: missing, corrupt, too large (a bomb)
            if exif_tags is not None:
                exif_tags.setdefault('seg_map_path', {})[info['seg_map_path']] = header.orientation
                if info.get('img_path'):
                    exif_tags.setdefault('img_path',
                                         {})[info['img_path']] = read_orientation(info['img_path'])
            label = LoadAnnotations()(results)['gt_seg_map']
        except Exception:  # missing or corrupt: the per-sample checks name it
            continue
        counts[info['seg_map_path']] = value_counts(label) if np.ndim(label) == 2 else {COLOUR: 1}
    return counts, total


def dataset_image_orientation(dataset) -> str:
    """``'exif'`` or ``'stored'``: how the (wrapped) dataset's pipeline loads images
    (:func:`~.transforms.image_orientation_of`; that of its first leaf)."""
    leaves = leaf_datasets(dataset)
    pipeline = getattr(leaves[0], 'pipeline', None) if leaves else None
    return image_orientation_of(getattr(pipeline, 'transforms', []))


def dataset_classes(dataset) -> Tuple[Optional[Sequence[str]], int]:
    """``(class names or None, ignore_index)`` of a (wrapped) dataset."""
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    leaves = leaf_datasets(dataset)
    ignore = getattr(leaves[0], 'ignore_index', 255) if leaves else 255
    return (tuple(classes) if classes is not None else None), ignore
