"""Per-sample data checks, registered in mmseg's ``TRANSFORMS``: a bad sample fails with one
:class:`BadSampleError` naming its file and the problem.

- :class:`CheckSegFiles` (before loading): the files exist and are not empty; JPEG and PNG files
  are whole (the JPEG end-of-image marker, the PNG ``IEND`` chunk: OpenCV decodes a truncated
  JPEG without an error, filling the missing rows with grey) and PNG chunks pass their
  checksums; headers decode, sizes are plausible and at most ``max_pixels`` (no decompression
  bomb is decoded), image and label have the same size (:func:`~.file_checks.inspect_file`).
  Our datasets and :class:`~.validated_dataset.ValidatedDataset` run it before the pipeline
  (:func:`check_files_first`), so it also guards test pipelines that must start with
  ``LoadImageFromFile`` (mmseg's inference API replaces their first step).
- :class:`CheckSegSample` (after loading): the image is a non-empty 2-D/3-D array; the label is
  single-channel, has the image's size and only values in ``{0..num_classes-1, ignore_index}``.

:class:`~.validated_dataset.ValidatedDataset` inserts both into a dataset's pipeline.
"""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from .file_checks import MAX_PIXELS, allow_in_pillow, inspect_file
from .missing_files import PATH_KEYS

# the converter of masks (0/255, grey levels, colours) to index labels, named in errors
CONVERT_CMD = 'python tools/dataset_converters/masks2labels.py'
# set in a sample's results once CheckSegFiles has passed it (a later CheckSegFiles skips it)
CHECKED_KEY = 'seg_files_checked'


class BadSampleError(ValueError):
    """A sample's file is missing, truncated, corrupt, or has invalid content."""

    def __init__(self,
                 path: str,
                 problem: Optional[str] = None,
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


@TRANSFORMS.register_module()
class CheckSegFiles(BaseTransform):
    """Check a sample's files before they are loaded (see :func:`~.file_checks.inspect_file`).

    Raises :class:`BadSampleError` for the first bad file: missing, a symlink loop, empty,
    truncated JPEG/PNG, corrupt (unreadable header, PNG checksum), an unknown format, a header
    declaring more than ``max_pixels`` pixels, or image and label of different sizes (compared
    from the headers). Cost: a header read per file and the chunks of PNGs, small next to
    decoding the image. Our datasets and :class:`ValidatedDataset` run the pipeline's first
    ``CheckSegFiles`` on each sample before the pipeline (:func:`check_files_first`); then the
    one in the pipeline passes the sample through.

    Args:
        max_pixels: the most pixels (width x height) a header may declare; default
            :data:`~.file_checks.MAX_PIXELS` (100 Mpixel). Pillow's own limit is raised to it
            if lower.
    """

    def __init__(self, max_pixels: int = MAX_PIXELS) -> None:
        self.max_pixels = int(max_pixels)
        allow_in_pillow(self.max_pixels)

    def transform(self, results: dict) -> dict:
        if results.get(CHECKED_KEY):
            return results
        sizes = {}
        for key in PATH_KEYS:
            path = results.get(key)
            if path:
                problem, sizes[key] = inspect_file(path, self.max_pixels)
                if problem:
                    raise BadSampleError(path, problem, results.get('sample_idx'))
        img_size, seg_size = sizes.get('img_path'), sizes.get('seg_map_path')
        if img_size and seg_size and img_size != seg_size:
            raise BadSampleError(
                results['seg_map_path'], f'label size {seg_size[0]}x{seg_size[1]} (HxW) '
                f'differs from the image {results["img_path"]} ({img_size[0]}x{img_size[1]})',
                results.get('sample_idx'))
        results[CHECKED_KEY] = True
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(max_pixels={self.max_pixels})'


def check_files_first(pipeline, results: dict) -> dict:
    """``results`` (a data-list entry) checked by the first :class:`CheckSegFiles` of
    ``pipeline`` (a ``Compose`` or list of transforms; a default one if it has none), before the
    pipeline decodes anything. Raises :class:`BadSampleError`."""
    transforms = getattr(pipeline, 'transforms', pipeline) or []
    check = next((t for t in transforms if isinstance(t, CheckSegFiles)), None)
    return (check or CheckSegFiles())(results)


class FilesCheckedFirst:
    """Mixin for a ``BaseSegDataset``: each sample's files are checked by
    :func:`check_files_first` before its pipeline runs, so no truncated file or decompression
    bomb is decoded, even by a test pipeline starting with ``LoadImageFromFile`` (mmseg's
    inference API needs that first step). :class:`ValidatedDataset` skips its own check then.
    A :class:`CheckSegSample` in the pipeline without ``num_classes`` gets the dataset's number
    of classes and ``ignore_index`` (so a config that changes ``metainfo.classes`` needs no
    other change)."""

    checks_files_first = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for transform in getattr(self.pipeline, 'transforms', []):
            if isinstance(transform, CheckSegSample) and transform.num_classes is None:
                transform.num_classes = len(self.metainfo['classes'])
                transform.ignore_index = self.ignore_index

    def prepare_data(self, idx: int):
        return self.pipeline(check_files_first(self.pipeline, self.get_data_info(idx)))


def label_problem(label: np.ndarray,
                  num_classes: Optional[int],
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
