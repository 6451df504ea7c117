"""Bad samples fail early with one clear error naming the file, or are skipped and counted.

Three pieces, all registered in mmseg's registries:

- :class:`CheckSegFiles` (transform, before loading): the files exist and are not empty; JPEG and
  PNG files are whole (the JPEG end-of-image marker, the PNG ``IEND`` chunk: OpenCV decodes a
  truncated JPEG without an error, filling the missing rows with grey) and PNG chunks pass
  their checksums; headers decode, sizes are plausible, image and label have the same size.
- :class:`CheckSegSample` (transform, after loading): the image is a non-empty 2-D/3-D array;
  the label is single-channel, has the image's size and only values in
  ``{0..num_classes-1, ignore_index}``.
- :class:`ValidatedDataset` (dataset wrapper): inserts both checks into the wrapped dataset's
  pipeline, checks at build time that every listed file exists, and turns any error raised
  while loading a sample into one :class:`BadSampleError` naming the sample's files. With
  ``on_error='skip'`` it skips bad samples instead, with a warning naming the file and a count.

:func:`scan_dataset` runs the checks over a whole dataset (``tools/check_dataset.py``).

Split-level label checks (:func:`analyze_labels`, on the label values of many files; run by
``tools/check_dataset.py`` over every file and by ``DataCheckHook`` over a bounded sample before
the first iteration): a split whose labels are all void, labels that look like binary masks
saved as 0/255 (255 is void: every foreground pixel would be ignored, the loss is ~0 and the
mIoU 100) or as two other grey levels, colour labels, and classes without pixels. Each names
files and the fix (``tools/dataset_converters/masks2labels.py``).
"""
import copy
import logging
import os
import os.path as osp
import time
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmseg.registry import DATASETS, TRANSFORMS

CONVERT_CMD = 'python tools/dataset_converters/masks2labels.py'
JPEG_MAGIC = b'\xff\xd8\xff'
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
PATH_KEYS = ('img_path', 'seg_map_path')


class BadSampleError(ValueError):
    """A sample's file is missing, truncated, corrupt, or has invalid content."""

    def __init__(self, path: str, problem: Optional[str] = None,
                 index: Optional[int] = None) -> None:
        self.path = path
        self.problem = problem
        self.index = index
        if problem is None:  # re-raised from a DataLoader worker with the full message
            super().__init__(path)
            return
        where = f'sample {index}: ' if index is not None else ''
        super().__init__(f'bad data: {where}{path}: {problem}')

    def __reduce__(self):  # DataLoader workers pickle the error back to the main process
        return BadSampleError, (self.path, self.problem, self.index)


def inspect_file(path: str, max_pixels: int = 1 << 28
                 ) -> Tuple[Optional[str], Optional[Tuple[int, int]]]:
    """``(problem, (height, width))`` of an image or label file, judged without decoding pixels.

    ``problem`` is ``None`` if nothing is wrong; the size is ``None`` if unknown. Read: the
    header, the last 4 KiB (JPEG end-of-image marker, PNG ``IEND``) and, for PNG, the chunks
    with their checksums (``PIL.Image.verify``); formats Pillow does not know must be readable
    by OpenCV (``cv2.haveImageReader``).
    """
    if not osp.isfile(path):
        return 'file not found' + (' (a folder)' if osp.isdir(path) else ''), None
    size = osp.getsize(path)
    if size == 0:
        return 'empty file (0 bytes)', None
    with open(path, 'rb') as f:
        head = f.read(8)
        f.seek(max(0, size - 4096))
        tail = f.read()
    is_jpeg, is_png = head.startswith(JPEG_MAGIC), head.startswith(PNG_MAGIC)
    if is_jpeg and b'\xff\xd9' not in tail:
        return 'truncated JPEG (no end-of-image marker): re-copy or re-download it', None
    if is_png and b'IEND' not in tail:
        return 'truncated PNG (no IEND chunk): re-copy or re-convert it', None
    from PIL import Image
    try:
        with Image.open(path) as image:
            width, height = image.size
            if is_png:
                image.verify()  # every chunk's CRC, without decompressing
    except Image.DecompressionBombError as error:
        return f'image too large ({error})', None
    except Exception as error:  # Pillow raises many types on bad files
        if is_jpeg or is_png:
            kind = 'JPEG' if is_jpeg else 'PNG'
            return f'corrupt {kind} ({type(error).__name__}: {error})', None
        import cv2
        if not cv2.haveImageReader(path):
            return 'not an image file (neither Pillow nor OpenCV can read its format)', None
        return None, None  # a format only OpenCV reads: left to the loader
    if width * height == 0 or width * height > max_pixels:
        return f'implausible size {width}x{height} in the header', None
    return None, (height, width)


def file_problem(path: str) -> Optional[str]:
    """What is wrong with an image or label file (:func:`inspect_file`); ``None`` if nothing."""
    return inspect_file(path)[0]


@TRANSFORMS.register_module()
class CheckSegFiles(BaseTransform):
    """Check a sample's files before they are loaded (see :func:`inspect_file`).

    Raises :class:`BadSampleError` for the first bad file: missing, empty, truncated JPEG/PNG,
    corrupt (unreadable header, PNG checksum), an unknown format, or image and label of
    different sizes (compared from the headers). Place it first in the pipeline;
    :class:`ValidatedDataset` does that. Cost: a header read per file and the chunks of PNGs,
    small next to decoding the image.
    """

    def transform(self, results: dict) -> dict:
        sizes = {}
        for key in PATH_KEYS:
            path = results.get(key)
            if path:
                problem, sizes[key] = inspect_file(path)
                if problem:
                    raise BadSampleError(path, problem, results.get('sample_idx'))
        img_size, seg_size = sizes.get('img_path'), sizes.get('seg_map_path')
        if img_size and seg_size and img_size != seg_size:
            raise BadSampleError(
                results['seg_map_path'], f'label size {seg_size[0]}x{seg_size[1]} (HxW) '
                f'differs from the image {results["img_path"]} ({img_size[0]}x{img_size[1]})',
                results.get('sample_idx'))
        return results


def label_problem(label: np.ndarray, num_classes: Optional[int],
                  ignore_index: int = 255) -> Optional[str]:
    """What is wrong with a loaded label map; ``None`` if nothing."""
    if label.ndim != 2:
        return (f'label has shape {label.shape}, not (H, W): it must hold one class index per '
                'pixel (VOC: a palette PNG), not colours')
    if num_classes is None:
        return None
    values = label.ravel()
    if values.dtype == np.uint8:
        present = np.flatnonzero(np.bincount(values, minlength=256))  # fast for uint8
    else:
        present = np.unique(values)
    bad = [int(v) for v in present if not (0 <= v < num_classes or v == ignore_index)]
    if bad:
        shown = ', '.join(map(str, bad[:10])) + (', ...' if len(bad) > 10 else '')
        hint = (f' (a mask of grey levels {", ".join(map(str, present))}? Convert masks to '
                f'class indices: {CONVERT_CMD} SRC DST)' if len(present) <= 3 else '')
        return (f'label values {shown} are outside 0..{num_classes - 1} and {ignore_index} '
                f'(ignore); the dataset has {num_classes} classes{hint}')
    return None


@TRANSFORMS.register_module()
class CheckSegSample(BaseTransform):
    """Check a loaded sample: image array, label shape and values, image/label size.

    Place it right after ``LoadImageFromFile`` and ``LoadAnnotations`` (before any resizing of
    the label, which would hide a size mismatch; the label is compared with the image's
    ``ori_shape``, so a test pipeline may resize the image first); :class:`ValidatedDataset`
    does that and fills in ``num_classes`` and ``ignore_index`` from the dataset.

    Args:
        num_classes: labels must be in ``0..num_classes-1`` or ``ignore_index``; ``None`` skips
            the value check.
        ignore_index: the void label (255 on VOC).
    """

    def __init__(self, num_classes: Optional[int] = None, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        index = results.get('sample_idx')
        img_path = results.get('img_path', '<image>')
        img = results.get('img')
        if not isinstance(img, np.ndarray) or img.ndim not in (2, 3) or img.size == 0:
            shape = getattr(img, 'shape', None)
            raise BadSampleError(img_path, f'could not be decoded into an image (got {shape})',
                                 index)
        label = results.get('gt_seg_map')
        if label is None:
            return results
        seg_path = results.get('seg_map_path', '<label>')
        problem = label_problem(np.asarray(label), self.num_classes, self.ignore_index)
        if problem:
            raise BadSampleError(seg_path, problem, index)
        # the image as loaded: a test pipeline may resize the image before loading the label
        height, width = tuple(results.get('ori_shape') or img.shape[:2])[:2]
        if label.shape[:2] != (height, width):
            raise BadSampleError(
                seg_path, f'label size {label.shape[0]}x{label.shape[1]} (HxW) differs from the '
                f'image {img_path} ({height}x{width})', index)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')


def _sample_paths(info: dict) -> List[str]:
    return [info[k] for k in PATH_KEYS if info.get(k)]


def _as_bad_sample(error: Exception, info: dict, index: int) -> BadSampleError:
    """Any loading error, as a :class:`BadSampleError` naming the sample's files."""
    if isinstance(error, BadSampleError):
        return error
    first = (str(error).strip().splitlines() or [''])[0]
    paths = _sample_paths(info)
    named = [p for p in paths if p in str(error)]  # the loader named the file it failed on
    paths = named if len(named) == 1 else paths
    return BadSampleError(' / '.join(paths) or f'sample {index}',
                          f'could not be loaded ({type(error).__name__}: {first})', index)


def _insert_checks(transforms: list, num_classes: int, ignore_index: int) -> int:
    """Put CheckSegFiles first and CheckSegSample after the last loader; return its index."""
    if not any(isinstance(t, CheckSegFiles) for t in transforms):
        transforms.insert(0, CheckSegFiles())
    checks = [i for i, t in enumerate(transforms) if isinstance(t, CheckSegSample)]
    if checks:
        for i in checks:
            if transforms[i].num_classes is None:
                transforms[i].num_classes = num_classes
        return checks[-1]
    loaders = [i for i, t in enumerate(transforms) if type(t).__name__.startswith('Load')]
    position = loaders[-1] + 1 if loaders else len(transforms)
    transforms.insert(position, CheckSegSample(num_classes, ignore_index))
    return position


@DATASETS.register_module()
class ValidatedDataset:
    """Wrap a segmentation dataset so that bad data fails early and clearly, or is skipped.

    Config::

        train_dataloader = dict(dataset=dict(
            type='ValidatedDataset', on_error='raise',   # or 'skip'
            dataset=dict(type='FCNVOCDataset', ...)))

    At build time every file the dataset lists must exist; the error names the missing files
    and the split file. Each sample is then checked by :class:`CheckSegFiles` and
    :class:`CheckSegSample` (inserted into the wrapped pipeline), and any error raised while
    loading it becomes one :class:`BadSampleError` naming its image and label.

    ``on_error='skip'`` (opt-in): missing files are dropped at build time and bad samples are
    skipped when met, each with a warning naming the file and the running count of skipped
    samples (per process: each data-loader worker counts its own). In training the next sample
    in order is used instead, deterministically (exact resume keeps working). In testing a
    substitute would be evaluated twice, so the whole dataset is checked at build time
    (``precheck='full'``) and the bad samples are left out of the evaluation.

    Args:
        dataset: the dataset config or object (a mmengine ``BaseDataset``).
        on_error: ``'raise'`` (default) or ``'skip'``.
        precheck: ``'files'`` (default): at build time, check that the files exist;
            ``'full'``: also load and check every sample at build time (what
            ``tools/check_dataset.py`` does), so that content errors too stop the run before
            its first iteration.
        lazy_init: as mmengine's datasets.
    """

    def __init__(self,
                 dataset,
                 on_error: str = 'raise',
                 precheck: str = 'files',
                 lazy_init: bool = False) -> None:
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"ValidatedDataset: on_error={on_error!r} must be 'raise' or 'skip'")
        if precheck not in ('files', 'full'):
            raise ValueError(f"ValidatedDataset: precheck={precheck!r} must be 'files' or 'full'")
        self.dataset: BaseDataset = DATASETS.build(dataset) if isinstance(dataset,
                                                                          dict) else dataset
        self.on_error = on_error
        self.test_mode = bool(getattr(self.dataset, 'test_mode', False))
        self.precheck = 'full' if (on_error == 'skip' and self.test_mode) else precheck
        self.ignore_index = getattr(self.dataset, 'ignore_index', 255)
        classes = self.dataset.metainfo.get('classes')
        self.num_classes = len(classes) if classes is not None else None
        self.check_index = _insert_checks(self.dataset.pipeline.transforms, self.num_classes,
                                          self.ignore_index)
        self.num_skipped = 0
        self._warned: set = set()
        self._indices: List[int] = []
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self.dataset.metainfo)

    @property
    def pipeline(self):
        return self.dataset.pipeline

    def full_init(self) -> None:
        if self._fully_initialized:
            return
        self.dataset.full_init()
        indices = list(range(len(self.dataset)))
        missing = [(i, p) for i in indices for p in _sample_paths(self.dataset.get_data_info(i))
                   if not osp.isfile(p)]
        if missing:
            split = getattr(self.dataset, 'ann_file', '') or 'the dataset'
            shown = '; '.join(p for _, p in missing[:5]) + ('; ...' if len(missing) > 5 else '')
            summary = (f'{len(missing)} file(s) listed by {split} are missing: {shown}')
            if self.on_error == 'raise':
                raise BadSampleError(missing[0][1], f'file not found ({summary}). Run python '
                                     'tools/check_dataset.py CONFIG to list every bad file.')
            dropped = {i for i, _ in missing}
            indices = [i for i in indices if i not in dropped]
            self.num_skipped += len(dropped)
            self._warn(f'ValidatedDataset: skipping {len(dropped)} of {len(self.dataset)} '
                       f'samples: {summary}')
        if self.precheck == 'full':
            bad = scan_dataset(self, indices=indices, progress=False)
            if bad and self.on_error == 'raise':
                raise bad[0].__class__(bad[0].path, bad[0].problem + (
                    f' (and {len(bad) - 1} more bad samples: run python tools/check_dataset.py '
                    'CONFIG to list them)' if len(bad) > 1 else ''), bad[0].index)
            for error in bad:
                self._skip(error)
            dropped = {e.index for e in bad}
            indices = [i for i in indices if i not in dropped]
        if not indices:
            raise BadSampleError(getattr(self.dataset, 'ann_file', '') or 'dataset',
                                 'no usable sample left')
        self._indices = indices
        self._fully_initialized = True

    def __len__(self) -> int:
        self.full_init()
        return len(self._indices)

    def get_data_info(self, idx: int) -> dict:
        self.full_init()
        return self.dataset.get_data_info(self._indices[idx])

    def load_and_check(self, dataset_index: int, transforms: Optional[Sequence[Callable]] = None,
                       results: Optional[dict] = None):
        """Run the pipeline (or ``transforms``, from ``results`` if given) on sample
        ``dataset_index`` of the wrapped dataset; errors come out as :class:`BadSampleError`."""
        info = self.dataset.get_data_info(dataset_index)
        try:
            if transforms is None:
                return self.dataset.prepare_data(dataset_index)
            results = info if results is None else results
            for transform in transforms:
                results = transform(results)
                if results is None:
                    return None
            return results
        except Exception as error:  # any loader's error, named after the sample's files
            raise _as_bad_sample(error, info, dataset_index) from error

    def __getitem__(self, idx: int) -> dict:
        self.full_init()
        count = len(self._indices)
        for attempt in range(count):
            index = self._indices[(idx + attempt) % count]
            try:
                data = self.load_and_check(index)
            except BadSampleError as error:
                if self.on_error == 'raise' or self.test_mode:
                    raise
                self._skip(error)
                continue
            if data is not None:
                return data
            if self.test_mode:
                raise BadSampleError(' / '.join(_sample_paths(self.dataset.get_data_info(index))),
                                     'the test pipeline returned None', index)
        raise BadSampleError(getattr(self.dataset, 'ann_file', '') or 'dataset',
                             f'all {count} samples are bad or were dropped by the pipeline')

    def _skip(self, error: BadSampleError) -> None:
        key = (error.index, error.path)
        if key in self._warned:
            return
        self._warned.add(key)
        self.num_skipped += 1
        where = '' if os.getpid() == _MAIN_PID else ' in this data-loader worker'
        self._warn(f'ValidatedDataset: skipped {error} ({self.num_skipped} bad samples skipped '
                   f'so far{where})')

    @staticmethod
    def _warn(message: str) -> None:
        print_log(message, logger='current', level=logging.WARNING)


_MAIN_PID = os.getpid()


def unwrap(dataset) -> ValidatedDataset:
    """``dataset`` as a :class:`ValidatedDataset` (wrapped lazily if it is not one)."""
    if isinstance(dataset, ValidatedDataset):
        return dataset
    return ValidatedDataset(dataset, on_error='raise', lazy_init=True)


def _scan_one(wrapper: ValidatedDataset, index: int
              ) -> Tuple[Optional[BadSampleError], Optional[Dict[int, int]]]:
    """Load sample ``index`` and check it: ``(error or None, label value counts or None)``.
    The counts are taken before :class:`CheckSegSample`, so labels with bad values count too."""
    transforms = wrapper.dataset.pipeline.transforms
    counts = None
    try:
        results = wrapper.load_and_check(index, transforms[:wrapper.check_index])
        label = results.get('gt_seg_map') if isinstance(results, dict) else None
        if label is not None and np.ndim(label) == 2:
            counts = value_counts(label)
        elif label is not None:
            counts = {COLOUR: 1}
        if results is not None:
            wrapper.load_and_check(index, transforms[wrapper.check_index:wrapper.check_index + 1],
                                   results)
    except BadSampleError as error:
        return error, counts
    return None, counts


_SCAN_WRAPPER: Optional[ValidatedDataset] = None


def _scan_worker(index: int):
    return (index, ) + _scan_one(_SCAN_WRAPPER, index)


def scan_dataset(dataset,
                 indices: Optional[Iterable[int]] = None,
                 workers: int = 0,
                 progress: bool = True,
                 desc: str = 'checking',
                 label_counts: Optional[Dict[str, Dict[int, int]]] = None
                 ) -> List[BadSampleError]:
    """Load and check samples (only the loading transforms and the checks, no augmentation);
    return one :class:`BadSampleError` per bad sample, in dataset order.

    ``dataset`` is a :class:`ValidatedDataset` or a dataset to wrap; ``indices`` index the wrapped
    dataset (default: all). ``workers > 1`` checks in that many processes. ``label_counts``, if
    given, is filled with ``{label path: {value: pixel count}}`` of every label loaded (for
    :func:`analyze_labels`).
    """
    global _SCAN_WRAPPER
    wrapper = unwrap(dataset)
    wrapper.dataset.full_init()
    indices = list(range(len(wrapper.dataset)) if indices is None else indices)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(indices), desc=desc, unit='img', dynamic_ncols=True)
    found = {}
    if workers > 1 and len(indices) > 1:
        import multiprocessing
        _SCAN_WRAPPER = wrapper
        context = multiprocessing.get_context('fork')
        with context.Pool(workers) as pool:
            for index, error, counts in pool.imap_unordered(_scan_worker, indices, chunksize=8):
                if error is not None:
                    found[index] = error
                if counts is not None and label_counts is not None:
                    label_counts[_label_path(wrapper, index)] = counts
                if bar is not None:
                    bar.update()
        _SCAN_WRAPPER = None
    else:
        for index in indices:
            error, counts = _scan_one(wrapper, index)
            if error is not None:
                found[index] = error
            if counts is not None and label_counts is not None:
                label_counts[_label_path(wrapper, index)] = counts
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    return [found[i] for i in sorted(found)]


def _label_path(wrapper: ValidatedDataset, index: int) -> str:
    info = wrapper.dataset.get_data_info(index)
    return info.get('seg_map_path') or info.get('img_path') or f'sample {index}'


# -------------------------------------------------------------------------------------------
# Split-level label checks: all void, binary masks saved as 0/255 or two grey levels, colour
# labels, classes without pixels.

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
    ``binary_files``, ``no_pixels``."""
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
    where = (f'{split} split ({_folders(files)}, {checked} label files checked'
             + (f' of {total_files})' if total_files and total_files > checked else ')'))
    colour = [f for f in files if COLOUR in counts[f]]
    if colour:
        findings.append(LabelFinding('error', 'colour', (
            f'{where}: {len(colour)} label file(s) are colour images, not one class index per '
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
    shown = ', '.join(f'{v}: {c} px' for v, c in sorted(total.items())[:8]) + (
        ', ...' if len(total) > 8 else '')
    if set(values) == {0, ignore_index}:
        findings.append(LabelFinding('error', 'binary_mask', (
            f'{where}: the labels hold only the values 0 and {ignore_index} ({shown}): binary '
            f'masks saved as 0/{ignore_index}? {ignore_index} is void (ignored), so every '
            'foreground pixel would be ignored: the model would learn background only, with a '
            f'loss near 0 and mIoU 100. Fix: {_fix(single)}'), tuple(single)))
        return findings
    if labelled == 0:
        findings.append(LabelFinding('error', 'all_void', (
            f'{where}: every pixel is void or no class ({shown}): there is nothing to train '
            f'on or to evaluate (the loss would be 0). If these values mark objects, '
            f'{_fix(single)}'), tuple(single)))
        return findings
    outside = [v for v in values if not valid(v) and v != ignore_index]
    if len(values) == 2 and outside:
        findings.append(LabelFinding('error', 'grey_levels', (
            f'{where}: the labels hold exactly two values, {values[0]} and {values[1]} '
            f'({shown}), and {", ".join(map(str, outside))} is no class of the '
            f'{num_classes}: binary masks saved as two grey levels? Fix: {_fix(single)}'),
            tuple(single)))
        return findings
    if outside:
        bad = [f for f in single if any(v in counts[f] for v in outside)]
        findings.append(LabelFinding('error', 'bad_values', (
            f'{where}: label values {", ".join(map(str, outside[:10]))} are outside '
            f'0..{(num_classes or 1) - 1} and {ignore_index} (void) in {len(bad)} file(s): '
            f'{_examples(bad)}. Fix num_classes/classes, or convert the labels to class '
            f'indices ({CONVERT_CMD} SRC DST, see --map)'), tuple(bad)))
    if ignore_index != 0:
        suspicious = [f for f in single if set(counts[f]) == {0, ignore_index}
                      and counts[f][ignore_index] >= 0.25 * sum(counts[f].values())]
        if suspicious:
            findings.append(LabelFinding('warning', 'binary_files', (
                f'{where}: {len(suspicious)} file(s) hold only 0 and {ignore_index} with a '
                f'large void area, like binary masks saved as 0/{ignore_index}: '
                f'{_examples(suspicious)}. If they are, {_fix(suspicious)}'),
                tuple(suspicious)))
    if num_classes:
        missing = [k for k in range(num_classes) if not total.get(k)]
        if missing:
            names = ', '.join(f'{k} {classes[k]!r}' if classes and k < len(classes) else str(k)
                              for k in missing[:12]) + (', ...' if len(missing) > 12 else '')
            findings.append(LabelFinding('warning', 'no_pixels', (
                f'{where}: {len(missing)} of {num_classes} classes have no pixels: {names}. '
                'They cannot be learnt from this split, and their IoU is NaN (left out of the '
                'means) when evaluated on it; check num_classes, the class names and the label '
                'values' + (' (only a sample of the files was checked)'
                            if total_files and total_files > checked else '')), ()))
    return findings


def _leaf_datasets(dataset) -> list:
    """The segmentation datasets inside wrappers (ValidatedDataset, Concat, Repeat...)."""
    if isinstance(dataset, ValidatedDataset):
        return _leaf_datasets(dataset.dataset)
    inner = getattr(dataset, 'datasets', None)
    if isinstance(inner, (list, tuple)):
        return [d for sub in inner for d in _leaf_datasets(sub)]
    if hasattr(dataset, 'dataset') and not hasattr(dataset, 'load_data_list'):
        return _leaf_datasets(dataset.dataset)
    return [dataset]


def count_labels(dataset,
                 max_files: Optional[int] = 1000,
                 time_limit: Optional[float] = 30.0
                 ) -> Tuple[Dict[str, Dict[int, int]], int]:
    """Value counts of a dataset's label files, read as ``LoadAnnotations`` reads them (with
    the dataset's ``reduce_zero_label`` and ``label_map``), images untouched.

    All files if there are at most ``max_files``, else ``max_files`` evenly spread over the
    dataset; stops after ``time_limit`` seconds. Unreadable files are left out (the per-sample
    checks name them). Returns ``(counts, number of label files in the dataset)``.
    """
    from mmseg.datasets.transforms import LoadAnnotations
    infos = []
    for leaf in _leaf_datasets(dataset):
        if hasattr(leaf, 'full_init'):
            leaf.full_init()
        for i in range(len(leaf)):
            info = leaf.get_data_info(i)
            if info.get('seg_map_path'):
                infos.append(info)
    total = len(infos)
    if max_files is not None and total > max_files:
        infos = [infos[int(i)] for i in np.linspace(0, total - 1, max_files)]
    counts: Dict[str, Dict[int, int]] = {}
    start = time.monotonic()
    for info in infos:
        if time_limit is not None and time.monotonic() - start > time_limit:
            break
        results = dict(seg_map_path=info['seg_map_path'], seg_fields=[],
                       reduce_zero_label=info.get('reduce_zero_label', False),
                       label_map=info.get('label_map'))
        try:
            label = LoadAnnotations()(results)['gt_seg_map']
        except Exception:  # missing or corrupt: the per-sample checks name it
            continue
        counts[info['seg_map_path']] = value_counts(label) if np.ndim(label) == 2 else {
            COLOUR: 1}
    return counts, total


def dataset_classes(dataset) -> Tuple[Optional[Sequence[str]], int]:
    """``(class names or None, ignore_index)`` of a (wrapped) dataset."""
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    leaves = _leaf_datasets(dataset)
    ignore = getattr(leaves[0], 'ignore_index', 255) if leaves else 255
    return (tuple(classes) if classes is not None else None), ignore
