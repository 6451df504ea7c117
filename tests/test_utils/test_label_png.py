"""Label PNGs: VOC palette images holding the class indices, written atomically."""
import os

import numpy as np
import pytest
from PIL import Image

from fcn_plugin.utils.label_png import save_label_png, voc_palette


def test_voc_palette_is_the_pascal_colour_map():
    palette = voc_palette()
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    assert palette[:4].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert palette[255].tolist() == [224, 224, 192]  # void: cream


def test_save_label_png_keeps_indices_and_never_leaves_a_partial_file(tmp_path, monkeypatch):
    label = np.array([[0, 1, 2], [255, 20, 0]], np.int64)
    path = tmp_path / 'labels' / 'x.png'  # the folder is created
    save_label_png(label, str(path))
    with Image.open(path) as image:
        assert image.mode == 'P'
        assert np.array_equal(np.array(image), label)  # indices, not colours
        assert image.getpalette()[:6] == [0, 0, 0, 128, 0, 0]
    assert os.listdir(path.parent) == ['x.png']  # no temporary file left

    def fail(self, fp, *args, **kwargs):
        with open(fp, 'wb') as f:
            f.write(b'\x89PNG partial')
        raise OSError('disk full')

    monkeypatch.setattr(Image.Image, 'save', fail)
    with pytest.raises(OSError, match='disk full'):
        save_label_png(np.zeros((2, 3), np.uint8), str(path))
    monkeypatch.undo()
    with Image.open(path) as image:  # the old file, whole
        assert np.array_equal(np.array(image), label)
    assert os.listdir(path.parent) == ['x.png']
