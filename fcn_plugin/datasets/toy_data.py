"""The toy data of the offline demo and the tests: small, deterministic segmentation datasets
(``tools/dataset_converters/make_toy_voc.py``, :func:`fcn_plugin.apis.make_toy_data`).

:func:`make_toy_voc` writes the Pascal VOC layout, so the same dataset class and pipeline as the
real data read it::

    data/toy/
      JPEGImages/toy_0000.jpg ...            RGB images of varied size (64..96 px a side)
      SegmentationClass/toy_0000.png ...     palette PNGs: 0 background, 1..5 objects, 255 void
      ImageSets/Segmentation/train.txt       image ids, one a line
      ImageSets/Segmentation/val.txt

Classes (``TOY_CLASSES``, defined in :mod:`fcn_plugin.datasets.toy_voc`): background plus five
object classes that differ in shape, size, colour and texture (a plain disc, a rotated square, a
triangle, a ring, a striped ellipse), 1 to 4 objects an image, later ones occluding earlier
ones. As in VOC, a band of void (255) runs along every object's border; it is ignored in the loss
and the metrics.

Everything comes from one seeded generator, so writing twice writes the same files (they are
rewritten, atomically; nothing else in the output folder is touched).

``size=(H, W)`` makes every image that size (a VOC image is 375x500 or 500x375); with
``sbd_layout=True`` the files follow the reference recipe's layout instead (train labels in
``SegmentationClassSBD``, splits ``sbd_train.txt`` / ``seg11valid.txt``), so that
``configs/*_vgg16_voc.py`` train on it with their dataloaders' ``data_root`` set to it.
:func:`make_toy_binary` writes a binary dataset with 0/255 masks, as annotation tools save them.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

from ..utils.io import atomic_write, atomic_write_text
from ..utils.label_png import save_label_png
from .toy_voc import TOY_CLASSES

# (hue centre in degrees, hue spread) per object class; background takes muted colours.
_CLASS_HUES = {1: (0, 20), 2: (120, 25), 3: (220, 20), 4: (55, 10), 5: (290, 25)}


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    h = (h % 360) / 60.0
    c = v * s
    x = c * (1 - abs(h % 2 - 1))
    rgb = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][int(h) % 6]
    return (np.array(rgb) + (v - c)) * 255


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Muted colour gradient plus low-frequency blobs and pixel noise, float (H, W, 3)."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    c0 = _hsv_to_rgb(rng.uniform(0, 360), rng.uniform(0.05, 0.3), rng.uniform(0.3, 0.8))
    c1 = _hsv_to_rgb(rng.uniform(0, 360), rng.uniform(0.05, 0.3), rng.uniform(0.3, 0.8))
    angle = rng.uniform(0, 2 * np.pi)
    t = np.clip((np.cos(angle) * xx + np.sin(angle) * yy + 1) / 2, 0, 1)[..., None]
    img = c0 * (1 - t) + c1 * t
    coarse = rng.normal(0, 18, (h // 16 + 2, w // 16 + 2, 3))
    blobs = np.kron(coarse, np.ones((16, 16, 1)))[:h, :w]
    return img + blobs + rng.normal(0, 6, (h, w, 3))


def _shape_mask(rng: np.random.Generator, cls: int, h: int, w: int) -> np.ndarray:
    """Boolean (H, W) mask of one object of class ``cls`` at a random place, size and pose."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = rng.uniform(0.12, 0.3) * min(h, w)  # half-size
    cy, cx = rng.uniform(0.15 * h, 0.85 * h), rng.uniform(0.15 * w, 0.85 * w)
    dy, dx = yy - cy, xx - cx
    theta = rng.uniform(0, np.pi)
    u = np.cos(theta) * dx + np.sin(theta) * dy
    v = -np.sin(theta) * dx + np.cos(theta) * dy
    if cls == 1:  # disc
        return dx**2 + dy**2 <= r**2
    if cls == 2:  # rotated square
        return (np.abs(u) <= r * 0.85) & (np.abs(v) <= r * 0.85)
    if cls == 3:  # triangle: three half-planes at 120 degrees
        inside = np.ones((h, w), dtype=bool)
        for k in range(3):
            a = theta + k * 2 * np.pi / 3
            inside &= np.cos(a) * dx + np.sin(a) * dy <= r * 0.6
        return inside
    if cls == 4:  # ring
        d2 = dx**2 + dy**2
        return (d2 <= r**2) & (d2 >= (0.55 * r)**2)
    # stripes: an ellipse
    return (u / r)**2 + (v / (0.6 * r))**2 <= 1


def _texture(rng: np.random.Generator, cls: int, h: int, w: int) -> np.ndarray:
    """Float (H, W, 3) appearance of class ``cls``: its hue range, with a class texture."""
    hue, spread = _CLASS_HUES[cls]
    base = _hsv_to_rgb(hue + rng.uniform(-spread, spread), rng.uniform(0.6, 1.0),
                       rng.uniform(0.55, 1.0))
    img = np.broadcast_to(base, (h, w, 3)).astype(np.float64)
    yy, xx = np.mgrid[0:h, 0:w]
    if cls == 5:  # two-tone stripes at a random angle and period
        a, period = rng.uniform(0, np.pi), rng.uniform(4, 7)
        stripes = np.sin((np.cos(a) * xx + np.sin(a) * yy) * 2 * np.pi / period) > 0
        img = np.where(stripes[..., None], img, img * 0.35)
    elif cls == 2:  # fine checker texture
        checker = ((yy // 3 + xx // 3) % 2).astype(bool)
        img = np.where(checker[..., None], img, img * 0.75)
    return img + rng.normal(0, 8, (h, w, 3))


def _void_borders(label: np.ndarray, width: int = 1) -> np.ndarray:
    """Set to 255 the pixels within ``width`` of a boundary between different labels."""
    out = label.copy()
    edge = np.zeros(label.shape, dtype=bool)
    padded = np.pad(label, width, mode='edge')
    h, w = label.shape
    for oy in range(-width, width + 1):
        for ox in range(-width, width + 1):
            shifted = padded[width + oy:width + oy + h, width + ox:width + ox + w]
            edge |= shifted != label
    out[edge] = 255
    return out


def make_sample(rng: np.random.Generator,
                size: Optional[Tuple[int, int]] = None,
                void_borders: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """One (image uint8 (H, W, 3) RGB, label uint8 (H, W)) pair; ``size`` (H, W) or random;
    ``void_borders=False``: no void band along the objects' borders."""
    h, w = (int(v) for v in rng.integers(64, 97, size=2))
    if size is not None:
        h, w = size
    img = _background(rng, h, w)
    label = np.zeros((h, w), dtype=np.uint8)
    for cls in rng.choice(np.arange(1, len(TOY_CLASSES)), size=rng.integers(1, 5)):
        cls = int(cls)
        mask = _shape_mask(rng, cls, h, w)
        img[mask] = _texture(rng, cls, h, w)[mask]
        label[mask] = cls  # later objects occlude earlier ones
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img, (_void_borders(label) if void_borders else label)


def make_toy_voc(out_dir: str = 'data/toy',
                 num_train: int = 96,
                 num_val: int = 32,
                 seed: int = 0,
                 size: Optional[Tuple[int, int]] = None,
                 sbd_layout: bool = False) -> Dict[str, List[str]]:
    """Write the toy dataset under ``out_dir``; returns ``{'train': ids, 'val': ids}``."""
    rng = np.random.default_rng(seed)
    img_dir = osp.join(out_dir, 'JPEGImages')
    seg_dirs = {
        'train': osp.join(out_dir, 'SegmentationClass' + ('SBD' if sbd_layout else '')),
        'val': osp.join(out_dir, 'SegmentationClass')
    }
    split_dir = osp.join(out_dir, 'ImageSets', 'Segmentation')
    for d in (img_dir, split_dir, *seg_dirs.values()):
        os.makedirs(d, exist_ok=True)
    ids = [f'toy_{i:04d}' for i in range(num_train + num_val)]
    splits = {'train': ids[:num_train], 'val': ids[num_train:]}
    for split, names in splits.items():
        for name in names:
            img, label = make_sample(rng, size)
            with atomic_write(osp.join(img_dir, name + '.jpg')) as tmp:
                Image.fromarray(img).save(tmp, quality=95)
            save_label_png(label, osp.join(seg_dirs[split], name + '.png'))
    split_files = {'train': 'sbd_train', 'val': 'seg11valid'} if sbd_layout else {}
    for split, names in splits.items():
        atomic_write_text(
            osp.join(split_dir,
                     split_files.get(split, split) + '.txt'), '\n'.join(names) + '\n')
    return splits


def make_toy_binary(out_dir: str = 'data/toy_binary',
                    num_train: int = 96,
                    num_val: int = 32,
                    seed: int = 0,
                    size: Optional[Tuple[int, int]] = None) -> Dict[str, List[str]]:
    """Write a binary toy dataset (foreground = any object) under ``out_dir``, with the masks as
    most annotation tools save them: greyscale PNGs, 0 background and 255 foreground::

        images/{train,val}/toy_0000.jpg    the toy images
        masks/{train,val}/toy_0000.png     0/255 masks: NOT training labels (255 is void there)

    ``tools/dataset_converters/masks2labels.py out_dir/masks out_dir/labels`` (or
    :func:`fcn_plugin.apis.convert_masks`) turns the masks into index labels (0/1) in
    ``labels/``, which ``configs/fcn8s_vgg16-tiny_toybinary.py`` reads. Returns ``{'train':
    ids, 'val': ids}``."""
    rng = np.random.default_rng(seed)
    ids = [f'toy_{i:04d}' for i in range(num_train + num_val)]
    splits = {'train': ids[:num_train], 'val': ids[num_train:]}
    for split, names in splits.items():
        img_dir, mask_dir = (osp.join(out_dir, sub, split) for sub in ('images', 'masks'))
        for d in (img_dir, mask_dir):
            os.makedirs(d, exist_ok=True)
        for name in names:
            img, label = make_sample(rng, size, void_borders=False)
            mask = np.where(label > 0, 255, 0).astype(np.uint8)  # greyscale (mode L) PNG
            for array, path in ((img, osp.join(img_dir, name + '.jpg')),
                                (mask, osp.join(mask_dir, name + '.png'))):
                options = dict(quality=95) if array.ndim == 3 else {}
                with atomic_write(path) as tmp:
                    Image.fromarray(array).save(tmp, **options)
    return splits
