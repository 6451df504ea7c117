"""Reading masks (grey levels, colours, indexed PNGs) and palettes, for
:mod:`.mask_conversion` (``tools/dataset_converters/masks2labels.py``): arrays of values,
colours as one integer each, and :class:`MaskError`, the converter's one-line user error."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from ..utils.label_png import voc_palette

Colour = Tuple[int, int, int]


class MaskError(ValueError):
    """A mask that cannot be converted as asked (names the file and the fix)."""


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
        if _voc_coloured(rgb):
            raise MaskError(f'{path}: a colour mask ({mode}) in the VOC palette\'s colours: add '
                            '--palette voc (its void colour 224,224,192 becomes 255)')
        raise MaskError(f'{path}: a colour mask ({mode}): give the colour of each class with '
                        '--palette R,G,B ... or --palette-png FILE')
    return arr


def _voc_coloured(rgb: np.ndarray) -> bool:
    """Every colour of ``rgb`` (``(H, W, 3)``) is one of the VOC palette's."""
    voc = np.unique(colour_key(voc_palette()))
    return bool(np.isin(np.unique(colour_key(rgb)), voc).all())


def index_colour(img: Image.Image, index: int) -> Optional[Colour]:
    """The palette colour of ``index`` in an indexed (mode P or PA) image, else None."""
    if img.mode not in ('P', 'PA'):
        return None
    flat = img.getpalette() or []
    return tuple(flat[3 * index:3 * index + 3]) if len(flat) >= 3 * index + 3 else None


def read_colour(path: str) -> np.ndarray:
    """A mask as ``(H, W, 3)`` uint8 RGB (an indexed PNG: the colours of its palette)."""
    with Image.open(path) as img:
        if img.mode != 'RGB':
            img = img.convert('RGB')
        return np.array(img)


def colour_key(rgb: np.ndarray) -> np.ndarray:
    """One integer per colour: ``R << 16 | G << 8 | B``."""
    rgb = rgb.astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def key_colour(key: int) -> Colour:
    return (key >> 16) & 255, (key >> 8) & 255, key & 255


def colour_counts(rgb: np.ndarray) -> Dict[int, int]:
    unique, counts = np.unique(colour_key(rgb).ravel(), return_counts=True)
    return {int(k): int(c) for k, c in zip(unique, counts)}


def describe(value: int, colour: bool) -> str:
    """A mask value as the report shows it: the grey level, or ``'#rrggbb'``."""
    return ('#%02x%02x%02x' % key_colour(value)) if colour else str(value)


# ------------------------------------------------------------------------------ palettes
def parse_colour(text: Union[str, Sequence[int]]) -> Colour:
    """``'R,G,B'`` or ``'#rrggbb'`` (or an ``(R, G, B)`` sequence) as a tuple of ints."""
    if not isinstance(text, str):
        text = ','.join(str(c) for c in text)
    text = text.strip()
    if text.startswith('#') and len(text) == 7:
        return tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))
    parts = text.split(',')
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) < 256 for p in parts):
        raise MaskError(f'{text!r}: a colour is R,G,B (0-255 each) or #rrggbb')
    return tuple(int(p) for p in parts)


def palette_from_png(path: str) -> List[Colour]:
    """The palette of an indexed (mode P) PNG, entry i = the colour of index i."""
    with Image.open(path) as img:
        if img.mode != 'P':
            raise MaskError(f'--palette-png {path}: not an indexed (palette) image but {img.mode}')
        flat = img.getpalette() or []
    return [tuple(flat[i:i + 3]) for i in range(0, len(flat) - 2, 3)]
