"""VOC-style label maps as palette PNGs (the format of ``SegmentationClass/``)."""
import numpy as np
from PIL import Image

from .io import atomic_write


def voc_palette(num: int = 256) -> np.ndarray:
    """The Pascal VOC colour map, ``(num, 3)`` uint8: 0 black, 1 dark red, ..., 255 cream."""
    palette = np.zeros((num, 3), dtype=np.uint8)
    for i in range(num):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette[i] = (r, g, b)
    return palette


def save_label_png(label: np.ndarray, path: str) -> None:
    """Save an ``(H, W)`` label map as a VOC palette PNG, atomically
    (:func:`~fcn_plugin.utils.io.atomic_write`)."""
    img = Image.fromarray(np.asarray(label).astype(np.uint8), mode='P')
    img.putpalette(voc_palette().flatten().tolist())
    with atomic_write(path) as tmp:
        img.save(tmp)
