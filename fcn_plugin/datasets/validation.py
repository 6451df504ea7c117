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
"""
import copy
import logging
import os
import os.path as osp
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmseg.registry import DATASETS, TRANSFORMS

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
        return (f'label values {shown} are outside 0..{num_classes - 1} and {ignore_index} '
                f'(ignore); the dataset has {num_classes} classes')
    return None


@TRANSFORMS.register_module()
class CheckSegSample(BaseTransform):
    """Check a loaded sample: image array, label shape and values, image/label size.

    Place it right after ``LoadImageFromFile`` and ``LoadAnnotations`` (before any resizing,
    which would hide a size mismatch); :class:`ValidatedDataset` does that and fills in
    ``num_classes`` and ``ignore_index`` from the dataset.

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
        if label.shape[:2] != img.shape[:2]:
            raise BadSampleError(
                seg_path, f'label size {label.shape[0]}x{label.shape[1]} (HxW) differs from the '
                f'image {img_path} ({img.shape[0]}x{img.shape[1]})', index)
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

    def load_and_check(self, dataset_index: int, transforms: Optional[Sequence[Callable]] = None):
        """Run the pipeline (or ``transforms``) on sample ``dataset_index`` of the wrapped
        dataset; errors come out as :class:`BadSampleError`."""
        info = self.dataset.get_data_info(dataset_index)
        try:
            if transforms is None:
                return self.dataset.prepare_data(dataset_index)
            results = info
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


def _scan_one(wrapper: ValidatedDataset, index: int) -> Optional[BadSampleError]:
    transforms = wrapper.dataset.pipeline.transforms[:wrapper.check_index + 1]
    try:
        wrapper.load_and_check(index, transforms)
    except BadSampleError as error:
        return error
    return None


_SCAN_WRAPPER: Optional[ValidatedDataset] = None


def _scan_worker(index: int) -> Tuple[int, Optional[BadSampleError]]:
    return index, _scan_one(_SCAN_WRAPPER, index)


def scan_dataset(dataset,
                 indices: Optional[Iterable[int]] = None,
                 workers: int = 0,
                 progress: bool = True,
                 desc: str = 'checking') -> List[BadSampleError]:
    """Load and check samples (only the loading transforms and the checks, no augmentation);
    return one :class:`BadSampleError` per bad sample, in dataset order.

    ``dataset`` is a :class:`ValidatedDataset` or a dataset to wrap; ``indices`` index the wrapped
    dataset (default: all). ``workers > 1`` checks in that many processes.
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
            for index, error in pool.imap_unordered(_scan_worker, indices, chunksize=8):
                if error is not None:
                    found[index] = error
                if bar is not None:
                    bar.update()
        _SCAN_WRAPPER = None
    else:
        for index in indices:
            error = _scan_one(wrapper, index)
            if error is not None:
                found[index] = error
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    return [found[i] for i in sorted(found)]
