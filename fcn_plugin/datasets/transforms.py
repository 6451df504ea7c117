"""Per-sample data checks, registered in mmseg's ``TRANSFORMS``: a bad sample fails with one
:class:`BadSampleError` naming its file and the problem.

- :class:`CheckSegFiles` (before loading): the files exist and are not empty; JPEG and PNG files
  are whole (the JPEG end-of-image marker, the PNG ``IEND`` chunk: OpenCV decodes a truncated
  JPEG without an error, filling the missing rows with grey) and PNG chunks pass their
  checksums; headers decode, sizes are plausible and at most ``max_pixels`` (no decompression
  bomb is decoded), the label has the size of the image as loaded: the image's EXIF
  orientation applied, as ``LoadImageFromFile`` applies it (:func:`~.file_checks.inspect_header`;
  a label drawn on the stored pixels of an image the tag turns by 90 degrees is named as such).
  Our datasets and :class:`~.validated_dataset.ValidatedDataset` run it before the pipeline
  (:func:`check_files_first`), so it also guards test pipelines that must start with
  ``LoadImageFromFile`` (mmseg's inference API replaces their first step).
- :class:`CheckSegSample` (after loading): the image is a non-empty 2-D/3-D array; the label is
  single-channel, has the image's size and only values in ``{0..num_classes-1, ignore_index}``.

:class:`~.validated_dataset.ValidatedDataset` inserts both into a dataset's pipeline.
"""
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from .file_checks import (EXIF_ORIENTATION, MAX_PIXELS, HeaderInfo, allow_in_pillow,
                          describe_orientation, inspect_header, oriented_size)
from .missing_files import PATH_KEYS

# the converter of masks (0/255, grey levels, colours) to index labels, named in errors
CONVERT_CMD = 'python tools/dataset_converters/masks2labels.py'
# set in a sample's results once CheckSegFiles has passed it (a later CheckSegFiles skips it)
CHECKED_KEY = 'seg_files_checked'
# set in a sample's results by CheckSegFiles: {'img_path': orientation, 'seg_map_path': ...}, the
# EXIF orientation of each file (None: no tag)
EXIF_KEY = 'exif_orientation'
# LoadImageFromFile flags that load the stored pixels, ignoring the EXIF orientation (mmcv's
# cv2 and pillow backends apply it with 'color' and 'grayscale'), and backends that never apply it
STORED_FLAGS = ('unchanged', 'color_ignore_orientation', 'grayscale_ignore_orientation')
STORED_BACKENDS = ('turbojpeg', 'tifffile')
ORIENTATION_MODES = ('exif', 'stored')


def image_orientation_of(transforms: Sequence) -> str:
    """How the first image loader of ``transforms`` orients images: ``'exif'`` (the EXIF
    orientation applied: mmcv's ``LoadImageFromFile`` by default) or ``'stored'`` (its
    ``color_type`` is ``'unchanged'`` or ``'*_ignore_orientation'``, or its backend is
    ``turbojpeg``/``tifffile``)."""
    for transform in transforms or []:
        if type(transform).__name__.startswith('LoadImageFrom') and hasattr(
                transform, 'color_type'):
            stored = (
                transform.color_type in STORED_FLAGS
                or getattr(transform, 'imdecode_backend', 'cv2') in STORED_BACKENDS)
            return 'stored' if stored else 'exif'
    return 'exif'


def set_image_orientation(transforms: Sequence) -> None:
    """Give each :class:`CheckSegFiles` of ``transforms`` without an ``image_orientation`` the
    one of the pipeline's image loader (:func:`image_orientation_of`)."""
    mode = image_orientation_of(transforms)
    for transform in transforms or []:
        if isinstance(transform, CheckSegFiles) and transform.image_orientation is None:
            transform.image_orientation = mode


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
    """Check a sample's files before they are loaded (see :func:`~.file_checks.inspect_header`).

    Raises :class:`BadSampleError` for the first bad file: missing, a symlink loop, empty,
    truncated JPEG/PNG, corrupt (unreadable header, PNG checksum), an unknown format, a header
    declaring more than ``max_pixels`` pixels, or image and label of different sizes (compared
    from the headers: the label with the image as loaded, its EXIF orientation applied; a label
    that has the image's stored size instead is named as drawn on the stored pixels, with the
    tag). Each file's EXIF orientation is left in ``results['exif_orientation']``
    (``tools/check_dataset.py`` reports rotated images). Cost: a header read per file and the
    chunks of PNGs, small next to decoding the image. Our datasets and :class:`ValidatedDataset`
    run the pipeline's first ``CheckSegFiles`` on each sample before the pipeline
    (:func:`check_files_first`); then the one in the pipeline passes the sample through.

    Args:
        max_pixels: the most pixels (width x height) a header may declare; default
            :data:`~.file_checks.MAX_PIXELS` (100 Mpixel). Pillow's own limit is raised to it
            if lower.
        image_orientation: how the pipeline loads images: ``'exif'`` (turned as their EXIF
            orientation tag says, as ``LoadImageFromFile`` does by default) or ``'stored'``
            (``color_type='color_ignore_orientation'`` or ``'unchanged'``); ``None`` (default):
            as the pipeline's image loader does (our datasets and ``ValidatedDataset`` set it),
            else ``'exif'``. Labels are always compared as stored (``LoadAnnotations`` ignores
            the tag).
    """

    def __init__(self,
                 max_pixels: int = MAX_PIXELS,
                 image_orientation: Optional[str] = None) -> None:
        if image_orientation not in (None, ) + ORIENTATION_MODES:
            raise ValueError(f'CheckSegFiles: image_orientation={image_orientation!r} must be '
                             "'exif', 'stored' or None")
        self.max_pixels = int(max_pixels)
        self.image_orientation = image_orientation
        allow_in_pillow(self.max_pixels)

    def transform(self, results: dict) -> dict:
        if results.get(CHECKED_KEY):
            return results
        infos = {}
        for key in PATH_KEYS:
            path = results.get(key)
            if path:
                infos[key] = info = inspect_header(path, self.max_pixels)
                if info.problem:
                    raise BadSampleError(path, info.problem, results.get('sample_idx'))
        image, label = infos.get('img_path'), infos.get('seg_map_path')
        if image and label and image.size and label.size:
            problem = self.size_problem(results['img_path'], image, label)
            if problem:
                raise BadSampleError(results['seg_map_path'], problem, results.get('sample_idx'))
        results[EXIF_KEY] = {key: info.orientation for key, info in infos.items()}
        results[CHECKED_KEY] = True
        return results

    def size_problem(self, img_path: str, image: HeaderInfo, label: HeaderInfo) -> Optional[str]:
        """Why ``label`` (its header) does not fit the image at ``img_path`` as loaded."""
        turned = self.image_orientation != 'stored' and image.orientation not in (None, 1)
        loaded = oriented_size(image.size, image.orientation) if turned else image.size
        if label.size == loaded:
            return None
        tag = (f'EXIF orientation tag ({EXIF_ORIENTATION}) = '
               f'{describe_orientation(image.orientation)}')
        if turned and label.size == image.size:
            return (f'label size {_hw(label.size)} (HxW) is the size of the image {img_path} as '
                    f'stored, but the image is loaded turned to {_hw(loaded)}: its {tag} is '
                    'applied when it is loaded (LoadImageFromFile, tools/infer.py, mmcv.imread; '
                    'viewers show it so), while labels are read as stored. The label was drawn on '
                    'the stored pixels: remove the tag from the image and keep its pixels (set it '
                    'to 1, e.g. exiftool -n -Orientation=1 IMAGE), or turn the label as the tag '
                    'says')
        where = f'; its {tag}, applied when it is loaded: stored {_hw(image.size)}' if turned \
            else ''
        if not turned and label.size == oriented_size(image.size, image.orientation):
            where = (f'; its {tag} would turn it to {_hw(label.size)}, as viewers show it, but '
                     'this pipeline loads images as stored (LoadImageFromFile color_type '
                     "'unchanged' or '..._ignore_orientation'): the label was drawn on the turned "
                     "image: load images with color_type='color'")
        return (f'label size {_hw(label.size)} (HxW) differs from the image {img_path} '
                f'({_hw(loaded)}{where})')

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(max_pixels={self.max_pixels}, '
                f'image_orientation={self.image_orientation!r})')


def _hw(size) -> str:
    return f'{size[0]}x{size[1]}'


def check_files_first(pipeline, results: dict) -> dict:
    """``results`` (a data-list entry) checked by the first :class:`CheckSegFiles` of
    ``pipeline`` (a ``Compose`` or list of transforms; a default one if it has none), before the
    pipeline decodes anything. Raises :class:`BadSampleError`."""
    transforms = getattr(pipeline, 'transforms', pipeline) or []
    check = next((t for t in transforms if isinstance(t, CheckSegFiles)), None)
    if check is None:
        check = CheckSegFiles(image_orientation=image_orientation_of(transforms))
    elif check.image_orientation is None:
        set_image_orientation(transforms)
    return check(results)


class FilesCheckedFirst:
    """Mixin for a ``BaseSegDataset``: each sample's files are checked by
    :func:`check_files_first` before its pipeline runs, so no truncated file or decompression
    bomb is decoded, even by a test pipeline starting with ``LoadImageFromFile`` (mmseg's
    inference API needs that first step). :class:`ValidatedDataset` skips its own check then.
    A :class:`CheckSegSample` in the pipeline without ``num_classes`` gets the dataset's number
    of classes and ``ignore_index`` (so a config that changes ``metainfo.classes`` needs no
    other change), a :class:`CheckSegFiles` without ``image_orientation`` the one of the
    pipeline's image loader."""

    checks_files_first = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        set_image_orientation(getattr(self.pipeline, 'transforms', []))
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
