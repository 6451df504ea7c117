"""What is wrong with an image or label file, judged before any pixel is decoded
(:func:`inspect_file`): not a readable file (:func:`~.missing_files.file_problem`: missing, a
symlink loop...), empty, a truncated JPEG/PNG, a corrupt header or PNG chunk, an unknown format,
or a size over the pixel limit (:data:`MAX_PIXELS`; a decompression bomb: a small PNG declaring
30000x30000 pixels decodes to 2.7 GB) read from the header; and the file's EXIF orientation tag
(:func:`inspect_header`, :func:`read_orientation`).

EXIF orientation (tag 274, what phone cameras write instead of rotating the pixels): images are
used as displayed, labels as stored. mmcv's ``imfrombytes``/``imread`` with the flags ``'color'``
and ``'grayscale'`` (``LoadImageFromFile``'s default, on both the ``cv2`` and the ``pillow``
backends), ``cv2.imread`` and image viewers turn the pixels as the tag says (JPEG and PNG
``eXIf``); ``'unchanged'`` (``LoadAnnotations``) and the ``*_ignore_orientation`` flags do not.
Orientations 5-8 swap width and height (:func:`oriented_size`).

:class:`~.transforms.CheckSegFiles` applies it to a sample's files (the datasets run it before
their pipeline: :func:`~.transforms.check_files_first`), ``tools/infer.py`` to its images.
"""
import re
import struct
import warnings
from typing import NamedTuple, Optional, Tuple

from .missing_files import file_problem

# The default pixel limit of a header (width x height): 100 Mpixel, e.g. 10000x10000, decodes to
# 300 MB (RGB); the largest images of common segmentation datasets have a few Mpixel.
MAX_PIXELS = 100_000_000
JPEG_MAGIC = b'\xff\xd8\xff'
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
EXIF_ORIENTATION = 274  # the EXIF tag Orientation
# what loading does to the stored pixels for each EXIF orientation (1: nothing)
ORIENTATIONS = {
    2: 'flipped left-right',
    3: 'rotated 180 degrees',
    4: 'flipped top-bottom',
    5: 'transposed (flipped and rotated 90 degrees)',
    6: 'rotated 90 degrees clockwise',
    7: 'transversed (flipped and rotated 90 degrees)',
    8: 'rotated 90 degrees counter-clockwise',
}
LIMIT_FIX = ("downscale or tile it, or raise the limit: dict(type='CheckSegFiles', "
             'max_pixels=N) in the dataset pipeline')


def allow_in_pillow(max_pixels: int) -> None:
    """Raise Pillow's own decompression-bomb limit (it refuses more than twice
    ``PIL.Image.MAX_IMAGE_PIXELS``, 179 Mpixel by default) to ``max_pixels`` if it is lower."""
    from PIL import Image
    if Image.MAX_IMAGE_PIXELS is not None and 2 * Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


def too_large(width: Optional[int], height: Optional[int], pixels: int, max_pixels: int) -> str:
    """The problem of an image whose header declares more than ``max_pixels`` pixels."""
    size = f'{width}x{height} = ' if width and height else ''
    return (f'image too large: its header declares {size}{pixels / 1e6:.0f} Mpixel, over the '
            f'limit of {max_pixels / 1e6:.0f} Mpixel (max_pixels; a decompression bomb, or a '
            f'huge image): {LIMIT_FIX}')


def _png_size(head: bytes) -> Tuple[Optional[int], Optional[int]]:
    """Width and height from a PNG's IHDR (the first 24 bytes)."""
    if len(head) >= 24 and head[12:16] == b'IHDR':
        return struct.unpack('>II', head[16:24])
    return None, None


class HeaderInfo(NamedTuple):
    """What :func:`inspect_header` read: ``problem`` (``None``: nothing wrong), the stored
    ``size`` ``(height, width)`` (``None``: unknown) and the EXIF ``orientation`` (``None``: no
    tag, or one outside 1..8)."""
    problem: Optional[str]
    size: Optional[Tuple[int, int]] = None
    orientation: Optional[int] = None


def oriented_size(size: Optional[Tuple[int, int]],
                  orientation: Optional[int]) -> Optional[Tuple[int, int]]:
    """``size`` ``(height, width)`` of the stored pixels as loaded with the EXIF
    ``orientation`` applied: orientations 5-8 turn the image by 90 degrees."""
    return size[::-1] if size and orientation in (5, 6, 7, 8) else size


def describe_orientation(orientation: Optional[int]) -> str:
    """``'6 (rotated 90 degrees clockwise)'``."""
    what = ORIENTATIONS.get(orientation or 1, 'unchanged')
    return f'{orientation} ({what})'


def _exif_orientation(image) -> Optional[int]:
    """The EXIF orientation of an opened Pillow image, from the EXIF block its header holds
    (JPEG ``APP1``, PNG ``eXIf`` before the image data): nothing is decoded (Pillow's own
    ``PngImageFile.getexif`` decodes the whole image when the tag is absent). ``None`` if there
    is no tag, or a value outside 1..8 (which no loader applies)."""
    data = image.info.get('exif')
    if not data:
        return None
    from PIL import Image
    try:
        exif = Image.Exif()
        exif.load(data)
        value = exif.get(EXIF_ORIENTATION)
    except Exception:  # a damaged EXIF block: loaders ignore it too
        return None
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def read_orientation(path: str) -> Optional[int]:
    """The EXIF orientation of an image file, from its header only (``None``: no tag, or the
    file cannot be read: the per-file checks say why)."""
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            with Image.open(path) as image:
                return _exif_orientation(image)
    except Exception:  # missing, corrupt, a bomb...: reported by inspect_file
        return None


def inspect_file(path: str,
                 max_pixels: int = MAX_PIXELS) -> Tuple[Optional[str], Optional[Tuple[int, int]]]:
    """``(problem, (height, width))`` of an image or label file (the stored size): the first two
    fields of :func:`inspect_header`."""
    info = inspect_header(path, max_pixels)
    return info.problem, info.size


def inspect_header(path: str, max_pixels: int = MAX_PIXELS) -> HeaderInfo:
    """What is wrong with an image or label file, its stored size and its EXIF orientation
    (:class:`HeaderInfo`), judged without decoding pixels.

    ``problem`` is ``None`` if nothing is wrong; the size is ``None`` if unknown. Read: the
    header, the last 4 KiB (JPEG end-of-image marker, PNG ``IEND``) and, for PNG, the chunks
    with their checksums (``PIL.Image.verify``, which does not decompress); formats Pillow does
    not know must be readable by OpenCV (``cv2.haveImageReader``). A header declaring more than
    ``max_pixels`` pixels is refused before anything is decoded.
    """
    problem = file_problem(path)
    if problem:
        return HeaderInfo(problem)
    with open(path, 'rb') as f:
        head = f.read(24)
        if not head:
            return HeaderInfo('empty file (0 bytes)')
        size = f.seek(0, 2)
        f.seek(max(0, size - 4096))
        tail = f.read()
    is_jpeg, is_png = head.startswith(JPEG_MAGIC), head.startswith(PNG_MAGIC)
    kind = 'JPEG' if is_jpeg else 'PNG'
    if is_jpeg and b'\xff\xd9' not in tail:
        return HeaderInfo('truncated JPEG (no end-of-image marker; the file is cut short): '
                          're-copy or re-download it')
    if is_png and b'IEND' not in tail:
        return HeaderInfo('truncated PNG (no IEND chunk; the file is cut short): re-copy or '
                          're-convert it')
    if is_png:  # the size from IHDR first: no Pillow limit in the way
        width, height = _png_size(head)
        if width is not None and width * height > max_pixels:
            return HeaderInfo(too_large(width, height, width * height, max_pixels))
    from PIL import Image
    allow_in_pillow(max_pixels)  # then Pillow refuses only what is over max_pixels too
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)  # our limit below
            with Image.open(path) as image:
                width, height = image.size
                orientation = _exif_orientation(image)
                if is_png:
                    image.verify()  # every chunk's CRC, without decompressing
    except Image.DecompressionBombError as error:  # over Pillow's limit: a bomb
        found = re.search(r'\((\d+) pixels\)', str(error))
        pixels = int(found.group(1)) if found else 0
        return HeaderInfo(too_large(None, None, pixels, max_pixels))
    except Exception as error:  # Pillow raises many types on bad files
        if is_jpeg or is_png:
            return HeaderInfo(f'corrupt {kind} ({type(error).__name__}: {error})')
        import cv2
        if not cv2.haveImageReader(path):
            return HeaderInfo('not an image file (neither Pillow nor OpenCV can read its format)')
        return HeaderInfo(None)  # a format only OpenCV reads: left to the loader
    if width * height > max_pixels:
        return HeaderInfo(too_large(width, height, width * height, max_pixels))
    if width * height == 0:
        return HeaderInfo(f'implausible size {width}x{height} in the header')
    return HeaderInfo(None, (height, width), orientation)
