"""tools/dataset_converters/masks2labels.py: 0/255, grey-level and colour masks to index-label
PNGs, with a report of the values found per file and in total and what each became."""
import json

import numpy as np
import pytest
from PIL import Image

from fcn_plugin.utils.label_png import save_label_png


@pytest.fixture(scope='module')
def m2l(load_tool):
    return load_tool('dataset_converters/masks2labels')


def save(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == 'P':  # an indexed PNG with the VOC palette, as VOC labels are
        save_label_png(array, str(path))
    else:
        Image.fromarray(array).save(str(path))
    return path


def label(path):
    png = Image.open(str(path))
    assert png.mode == 'P'  # written by the repository's label PNG writer (VOC palette)
    return np.array(png)


def disc_mask(h=12, w=16, on=255, off=0):
    yy, xx = np.mgrid[:h, :w]
    return np.where((yy - 6)**2 + (xx - 8)**2 <= 16, on, off).astype(np.uint8)


@pytest.fixture
def run(m2l):
    """``run(capsys, *args)``: the tool on ``args``: its exit code, stdout and stderr."""

    def main(capsys, *args):
        code = m2l.main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return main


def test_binary_0_255_folder_with_report(tmp_path, capsys, run):
    src, dst = tmp_path / 'masks', tmp_path / 'labels'
    mask = disc_mask()
    save(src / 'train' / 'a.png', mask)
    save(src / 'train' / 'b.png', np.zeros_like(mask))  # background only: still 0
    save(src / 'val' / 'c.png', np.full_like(mask, 255))  # foreground only: still 1
    code, out, _ = run(capsys, src, dst, '--report', tmp_path / 'r.json')
    assert code == 0
    np.testing.assert_array_equal(label(dst / 'train' / 'a.png'), (mask == 255).astype(np.uint8))
    assert not label(dst / 'train' / 'b.png').any()
    assert (label(dst / 'val' / 'c.png') == 1).all()
    # per file: the values found and what each became; totals; num_classes
    fg = int((mask == 255).sum())
    assert f'train/a.png: 0 ({mask.size - fg} px) -> 0, 255 ({fg} px) -> 1' in out
    assert 'train/b.png: 0 (192 px) -> 0' in out
    assert f'255: {fg + 192} px in 2 file(s) -> class 1' in out
    assert f'0: {2 * 192 - fg} px in 2 file(s) -> class 0' in out
    assert 'num_classes = 2' in out
    report = json.load(open(tmp_path / 'r.json'))
    assert report['mapping'] == {'0': 0, '255': 1} and report['num_classes'] == 2
    assert report['total']['255'] == {'pixels': fg + 192, 'files': 2, 'class': 1}
    assert report['files'][str(src / 'train' / 'a.png')] == {'0': mask.size - fg, '255': fg}
    assert not list(dst.rglob('*.tmp*'))  # written atomically: no temporary file left


def test_two_grey_levels_and_void_value(tmp_path, capsys, run):
    src = tmp_path / 'masks'
    mask = disc_mask(on=200, off=40)
    mask[0] = 128  # a "don't care" band
    save(src / 'x.bmp', mask)  # any image format
    code, out, _ = run(capsys, src, tmp_path / 'labels', '--void-value', '128')
    assert code == 0
    got = label(tmp_path / 'labels' / 'x.png')
    assert (got[0] == 255).all()
    np.testing.assert_array_equal(got[1:], (mask[1:] == 200).astype(np.uint8))
    assert '128: 16 px in 1 file(s) -> 255 (void)' in out
    assert '40: ' in out and '-> class 0' in out and '200: ' in out and '-> class 1' in out


def test_grey_rgb_masks_threshold_and_map(tmp_path, capsys, run):
    src = tmp_path / 'masks'
    mask = disc_mask()
    mask[mask == 255] = 250  # anti-aliased-ish levels
    mask[0, :4] = 7
    save(src / 'a_mask.png', np.repeat(mask[..., None], 3, axis=2))  # grey saved as RGB
    save(src / 'ignored.txt.png', mask)  # not matching --in-suffix
    code, _, err = run(capsys, src, tmp_path / 'auto', '--in-suffix', '_mask.png')
    assert code == 0  # three levels: 0, 7, 250 -> 0, 1, 2
    assert set(np.unique(label(tmp_path / 'auto' / 'a.png'))) == {0, 1, 2}
    assert not (tmp_path / 'auto' / 'ignored.txt.png').exists()
    code, _, _ = run(capsys, src, tmp_path / 'thr', '--in-suffix', '_mask.png', '--threshold',
                     '128')
    np.testing.assert_array_equal(label(tmp_path / 'thr' / 'a.png'), (mask >= 128).astype(np.uint8))
    code, _, _ = run(capsys, src / 'a_mask.png', tmp_path / 'one.png', '--map', '0:0', '7:255',
                     '250:1')  # a single file
    got = label(tmp_path / 'one.png')
    assert (got[0, :4] == 255).all() and set(np.unique(got)) == {0, 1, 255}
    code, _, err = run(capsys, src / 'a_mask.png', tmp_path / 'bad', '--map', '0:0', '250:1')
    assert code == 1 and 'value 7 has no --map entry' in err


def test_too_many_grey_levels_asks_for_a_threshold(tmp_path, capsys, run):
    save(tmp_path / 'm' / 'a.png', np.arange(200, dtype=np.uint8).reshape(10, 20))
    code, _, err = run(capsys, tmp_path / 'm', tmp_path / 'l')
    assert code == 1 and 'grey levels found' in err and '--threshold' in err


def test_colour_masks_with_a_palette(tmp_path, capsys, run):
    src = tmp_path / 'masks'
    classes = np.zeros((10, 14), np.uint8)
    classes[2:6, 2:6] = 1
    classes[6:, 8:] = 2
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)
    rgb = colours[classes]
    rgb[0, 0] = (10, 250, 10)  # an unknown colour
    save(src / 'a.png', rgb)
    code, _, err = run(capsys, src, tmp_path / 'l', '--palette', '0,0,0', '255,0,0', '#0000ff')
    assert code == 1 and 'colour (10, 250, 10) is not in the palette' in err
    code, out, _ = run(capsys, src, tmp_path / 'l', '--palette', '0,0,0', '255,0,0', '#0000ff',
                       '--void-value', '10,250,10')
    assert code == 0
    expected = classes.copy()
    expected[0, 0] = 255
    np.testing.assert_array_equal(label(tmp_path / 'l' / 'a.png'), expected)
    assert '#ff0000: 16 px in 1 file(s) -> class 1' in out and '-> 255 (void)' in out
    # the same from a palette PNG (index i = class i), nearest colour for the odd pixel
    save(tmp_path / 'pal.png', np.zeros((2, 2), np.uint8), mode='P')
    voc = colours.copy()
    voc[1], voc[2] = (128, 0, 0), (0, 128, 0)  # VOC colours of classes 1 and 2
    rgb = voc[classes]
    rgb[0, 0] = (120, 5, 0)
    save(src / 'a.png', rgb)
    code, _, _ = run(capsys, src, tmp_path / 'p', '--palette-png', tmp_path / 'pal.png',
                     '--unknown', 'nearest')
    expected[0, 0] = 1
    assert code == 0
    np.testing.assert_array_equal(label(tmp_path / 'p' / 'a.png'), expected)


def test_colour_mask_without_palette_and_bad_arguments(tmp_path, capsys, run):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    save(tmp_path / 'm' / 'a.png', rgb)
    code, _, err = run(capsys, tmp_path / 'm', tmp_path / 'l')
    assert code == 1 and 'a colour mask' in err and '--palette' in err
    code, _, err = run(capsys, tmp_path / 'm', tmp_path / 'm')
    assert code == 1 and 'DST must differ from SRC' in err
    code, _, err = run(capsys, tmp_path / 'nothing', tmp_path / 'l')
    assert code == 1 and 'no such file or folder' in err


def test_dry_run_writes_nothing_and_output_inside_source_is_skipped(tmp_path, capsys, run):
    src = tmp_path / 'masks'
    save(src / 'a.png', disc_mask())
    code, out, _ = run(capsys, src, src / 'labels', '--dry-run')
    assert code == 0 and 'dry run' in out and not (src / 'labels').exists()
    assert run(capsys, src, src / 'labels')[0] == 0
    code, out, _ = run(capsys, src, src / 'labels')  # again: its own outputs are not inputs
    assert code == 0 and '1 mask(s)' in out


@pytest.mark.parametrize('mode', ['L', '1', 'I;16'])
def test_mask_image_modes(tmp_path, capsys, mode, run):
    mask = disc_mask()
    img = Image.fromarray(mask)
    if mode == '1':
        img = img.convert('1')
    elif mode == 'I;16':
        img = Image.fromarray((mask.astype(np.uint16) * 257))  # 16-bit 0/65535
    img.save(str(tmp_path / 'a.png'))
    code, out, _ = run(capsys, tmp_path / 'a.png', tmp_path / 'out')
    assert code == 0, out
    np.testing.assert_array_equal(label(tmp_path / 'out' / 'a.png'), (mask > 0).astype(np.uint8))
