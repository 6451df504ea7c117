"""Fixtures of tests/test_datasets: masks in the forms users bring (issue 20's trial).

``mask_forms(folder)`` writes one small set of masks, each with its image, and returns what
each should become: see :func:`mask_forms`.
"""
import numpy as np
import pytest
from PIL import Image

from fcn_plugin.utils.label_png import voc_palette


def _disc(h=12, w=16):
    """A binary ``(h, w)`` bool array: a disc in the middle."""
    yy, xx = np.mgrid[:h, :w]
    return (yy - h / 2)**2 + (xx - w / 2)**2 <= (min(h, w) / 3)**2


def _voc_label(h=12, w=16):
    """A VOC-style binary label: 0 background, 1 the disc, a 255 (void) border around it."""
    disc = _disc(h, w)
    grown = np.zeros_like(disc)  # the disc grown by one pixel, as VOC's border is drawn
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            grown |= np.roll(np.roll(disc, dy, 0), dx, 1)
    return np.where(disc, 1, np.where(grown, 255, 0)).astype(np.uint8)


@pytest.fixture(scope='session')
def mask_forms():
    """``mask_forms(folder)``: write the masks (``folder/masks/<form>.<ext>``) and their JPEG
    images (``folder/images/<form>.jpg``) of each form; returns ``{form: dict(mask=Path,
    image=Path, expected=(H, W) uint8 label, flags=dict, needs=str or None)}``. ``flags`` are
    the :func:`fcn_plugin.apis.convert_masks` options the form needs (none for most), ``needs``
    a text that the error without them names (the flag).

    Forms: ``zero_one`` (0/1 PNG), ``zero_255`` (0/255 PNG: 255 is the foreground),
    ``zero_one_void`` (0/1 with a 255 border, grey PNG), ``jpeg`` (a 0/255 mask saved as JPEG:
    levels blurred, ``--threshold``), ``voc_palette`` (the trial's case: an indexed PNG with
    VOC's palette, 0/1 and a 255 border), ``voc_rgb`` (the same as RGB colours, cream border:
    ``--palette voc``), ``grey_levels`` (0/128/255: three classes), ``rgba`` (a 0/255 grey
    mask with an alpha channel) and ``tiny`` (3x2 px, 0/255)."""

    def write(folder):
        disc = _disc()
        binary = disc.astype(np.uint8)
        voc = _voc_label()
        grey = np.where(disc, 255, 0).astype(np.uint8)
        grey[:3] = 128  # a third level: a band across the top
        levels = np.where(grey == 255, 2, np.where(grey == 128, 1, 0)).astype(np.uint8)
        tiny = np.array([[0, 255, 255], [0, 0, 255]], np.uint8)
        rgba = np.dstack([binary * 255] * 3 + [np.where(disc, 255, 128).astype(np.uint8)])
        forms = dict(
            zero_one=('png', binary, binary, {}, None),
            zero_255=('png', binary * 255, binary, {}, None),
            zero_one_void=('png', voc, voc, {}, None),
            jpeg=('jpg', binary * 255, binary, dict(threshold=128), '--threshold'),
            voc_palette=('png', voc, voc, {}, None),
            voc_rgb=('png', voc_palette()[voc], voc, dict(palette='voc'), '--palette voc'),
            grey_levels=('png', grey, levels, {}, None),
            rgba=('png', rgba, binary, {}, None),
            tiny=('png', tiny, (tiny == 255).astype(np.uint8), {}, None))
        (folder / 'masks').mkdir(parents=True, exist_ok=True)
        (folder / 'images').mkdir(parents=True, exist_ok=True)
        out = {}
        for name, (ext, mask, expected, flags, needs) in forms.items():
            path = folder / 'masks' / f'{name}.{ext}'
            img = Image.fromarray(mask)
            if name == 'voc_palette':  # indexed (mode P), VOC's palette: index 255 is cream
                img.putpalette(voc_palette().flatten().tolist())
            img.save(str(path), **(dict(quality=75) if ext == 'jpg' else {}))
            image = folder / 'images' / f'{name}.jpg'
            Image.fromarray(
                np.where(expected[..., None] == 1, 200,
                         60).repeat(3, 2).astype(np.uint8)).save(str(image))
            out[name] = dict(mask=path, image=image, expected=expected, flags=flags, needs=needs)
        return out

    return write
