"""What is wrong with an image or label file, judged before any pixel is decoded
(:func:`inspect_file`): not a readable file (:func:`~.missing_files.file_problem`: missing, a
symlink loop...), empty, a truncated JPEG/PNG, a corrupt header or PNG chunk, an unknown format,
or a size over the pixel limit (:data:`MAX_PIXELS`; a decompression bomb: a small PNG declaring
30000x30000 pixels decodes to 2.7 GB) read from the header.

:class:`~.transforms.CheckSegFiles` applies it to a sample's files (the datasets run it before
their pipeline: :func:`~.transforms.check_files_first`), ``tools/infer.py`` to its images.
"""
import re
import struct
import warnings
from typing import Optional, Tuple

from .missing_files import file_problem

# The default pixel limit of a header (width x height): 100 Mpixel, e.g. 10000x10000, decodes to
# 300 MB (RGB); the largest images of common segmentation datasets have a few Mpixel.
MAX_PIXELS = 100_000_000
JPEG_MAGIC = b'\xff\xd8\xff'
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
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


def inspect_file(path: str,
                 max_pixels: int = MAX_PIXELS) -> Tuple[Optional[str], Optional[Tuple[int, int]]]:
    """``(problem, (height, width))`` of an image or label file, judged without decoding pixels.

    ``problem`` is ``None`` if nothing is wrong; the size is ``None`` if unknown. Read: the
    header, the last 4 KiB (JPEG end-of-image marker, PNG ``IEND``) and, for PNG, the chunks
    with their checksums (``PIL.Image.verify``, which does not decompress); formats Pillow does
    not know must be readable by OpenCV (``cv2.haveImageReader``). A header declaring more than
    ``max_pixels`` pixels is refused before anything is decoded.
    """
    problem = file_problem(path)
    if problem:
        return problem, None
    with open(path, 'rb') as f:
        head = f.read(24)
        if not head:
            return 'empty file (0 bytes)', None
        size = f.seek(0, 2)
        f.seek(max(0, size - 4096))
        tail = f.read()
    is_jpeg, is_png = head.startswith(JPEG_MAGIC), head.startswith(PNG_MAGIC)
    kind = 'JPEG' if is_jpeg else 'PNG'
    if is_jpeg and b'\xff\xd9' not in tail:
        return ('truncated JPEG (no end-of-image marker; the file is cut short): re-copy or '
                're-download it'), None
    if is_png and b'IEND' not in tail:
        return ('truncated PNG (no IEND chunk; the file is cut short): re-copy or '
                're-convert it'), None
    if is_png:  # the size from IHDR first: no Pillow limit in the way
        width, height = _png_size(head)
        if width is not None and width * height > max_pixels:
            return too_large(width, height, width * height, max_pixels), None
    from PIL import Image
    allow_in_pillow(max_pixels)  # then Pillow refuses only what is over max_pixels too
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)  # our limit below
            with Image.open(path) as image:
                width, height = image.size
                if is_png:
                    image.verify()  # every chunk's CRC, without decompressing
    except Image.DecompressionBombError as error:  # over Pillow's limit: a bomb
        found = re.search(r'\((\d+) pixels\)', str(error))
        pixels = int(found.group(1)) if found else 0
        return too_large(None, None, pixels, max_pixels), None
    except Exception as error:  # Pillow raises many types on bad files
        if is_jpeg or is_png:
            return f'corrupt {kind} ({type(error).__name__}: {error})', None
        import cv2
        if not cv2.haveImageReader(path):
            return 'not an image file (neither Pillow nor OpenCV can read its format)', None
        return None, None  # a format only OpenCV reads: left to the loader
    if width * height > max_pixels:
        return too_large(width, height, width * height, max_pixels), None
    if width * height == 0:
        return f'implausible size {width}x{height} in the header', None
    return None, (height, width)
