"""Per-sample data checks, registered in mmseg's ``TRANSFORMS``: a bad sample fails with one
:class:`BadSampleError` naming its file and the problem.

- :class:`CheckSegFiles` (before loading): the files exist and are not empty; JPEG and PNG files
  are whole (the JPEG end-of-image marker, the PNG ``IEND`` chunk: OpenCV decodes a truncated
  JPEG without an error, filling the missing rows with grey) and PNG chunks pass their
  checksums; headers decode, sizes are plausible, image and label have the same size.
- :class:`CheckSegSample` (after loading): the image is a non-empty 2-D/3-D array; the label is
  single-channel, has the image's size and only values in ``{0..num_classes-1, ignore_index}``.

:class:`~.validated_dataset.ValidatedDataset` inserts both into a dataset's pipeline.
"""
import os.path as osp
from typing import Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from .missing_files import PATH_KEYS

# the converter of masks (0/255, grey levels, colours) to index labels, named in errors
CONVERT_CMD = 'python tools/dataset_converters/masks2labels.py'
JPEG_MAGIC = b'\xff\xd8\xff'
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


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
