"""fcn_plugin.apis.masks (and fcn_plugin.datasets.mask_conversion): 0/255, grey-level and
colour masks to index-label PNGs, with a report of the values found per file and in total and
what each became; tools/dataset_converters/masks2labels.py, its command line."""
import json

import numpy as np
import pytest
from PIL import Image

from fcn_plugin.apis.masks import MaskError, convert_masks
from fcn_plugin.utils.label_png import save_label_png


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


def convert(src, dst, **kwargs):
    """``convert_masks`` on paths; returns the report and the lines it logged."""
    lines = []
    report = convert_masks(str(src), str(dst), log=lines.append, **kwargs)
    return report, '\n'.join(lines)


# ---------------------------------------------------------------------------------- grey masks
def test_binary_0_255_folder_with_report(tmp_path):
    src, dst = tmp_path / 'masks', tmp_path / 'labels'
    mask = disc_mask()
    save(src / 'train' / 'a.png', mask)
    save(src / 'train' / 'b.png', np.zeros_like(mask))  # background only: still 0
    save(src / 'val' / 'c.png', np.full_like(mask, 255))  # foreground only: still 1
    report, out = convert(src, dst, report=str(tmp_path / 'r.json'))
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
    assert report['mapping'] == {'0': 0, '255': 1} and report['num_classes'] == 2
    assert report['total']['255'] == {'pixels': fg + 192, 'files': 2, 'class': 1}
    assert report['files'][str(src / 'train' / 'a.png')] == {'0': mask.size - fg, '255': fg}
    assert report['outputs'] == [str(dst / p) for p in ('train/a.png', 'train/b.png', 'val/c.png')]
    assert json.load(open(tmp_path / 'r.json')) == report  # the same report, as JSON
    assert not list(dst.rglob('*.tmp*'))  # written atomically: no temporary file left


def test_two_grey_levels_and_void_value(tmp_path):
    src = tmp_path / 'masks'
    mask = disc_mask(on=200, off=40)
    mask[0] = 128  # a "don't care" band
    save(src / 'x.bmp', mask)  # any image format
    _, out = convert(src, tmp_path / 'labels', void_values=[128])
    got = label(tmp_path / 'labels' / 'x.png')
    assert (got[0] == 255).all()
    np.testing.assert_array_equal(got[1:], (mask[1:] == 200).astype(np.uint8))
    assert '128: 16 px in 1 file(s) -> 255 (void)' in out
    assert '40: ' in out and '-> class 0' in out and '200: ' in out and '-> class 1' in out


def test_grey_rgb_masks_threshold_and_map(tmp_path):
    src = tmp_path / 'masks'
    mask = disc_mask()
    mask[mask == 255] = 250  # anti-aliased-ish levels
    mask[0, :4] = 7
    save(src / 'a_mask.png', np.repeat(mask[..., None], 3, axis=2))  # grey saved as RGB
    save(src / 'ignored.txt.png', mask)  # not matching in_suffix
    report, _ = convert(src, tmp_path / 'auto', in_suffix='_mask.png')
    assert report['mapping'] == {'0': 0, '7': 1, '250': 2}  # three levels, in ascending order
    assert set(np.unique(label(tmp_path / 'auto' / 'a.png'))) == {0, 1, 2}
    assert not (tmp_path / 'auto' / 'ignored.txt.png').exists()
    convert(src, tmp_path / 'thr', in_suffix='_mask.png', threshold=128)
    np.testing.assert_array_equal(label(tmp_path / 'thr' / 'a.png'), (mask >= 128).astype(np.uint8))
    convert(src / 'a_mask.png', tmp_path / 'one.png', mapping={0: 0, 7: 255, 250: 1})  # one file
    got = label(tmp_path / 'one.png')
    assert (got[0, :4] == 255).all() and set(np.unique(got)) == {0, 1, 255}
    with pytest.raises(MaskError, match='value 7 has no --map entry'):
        convert(src / 'a_mask.png', tmp_path / 'bad', mapping={0: 0, 250: 1})
    assert not (tmp_path / 'bad').exists()  # nothing written before the whole plan is known


def test_too_many_grey_levels_asks_for_a_threshold(tmp_path):
    save(tmp_path / 'm' / 'a.png', np.arange(200, dtype=np.uint8).reshape(10, 20))
    with pytest.raises(MaskError, match='grey levels found') as info:
        convert(tmp_path / 'm', tmp_path / 'l')
    assert '--threshold' in str(info.value)


@pytest.mark.parametrize('mode', ['L', '1', 'I;16'])
def test_mask_image_modes(tmp_path, mode):
    mask = disc_mask()
    img = Image.fromarray(mask)
    if mode == '1':
        img = img.convert('1')
    elif mode == 'I;16':
        img = Image.fromarray((mask.astype(np.uint16) * 257))  # 16-bit 0/65535
    img.save(str(tmp_path / 'a.png'))
    _, out = convert(tmp_path / 'a.png', tmp_path / 'out')
    np.testing.assert_array_equal(label(tmp_path / 'out' / 'a.png'), (mask > 0).astype(np.uint8))


# -------------------------------------------------------------------------------- colour masks
def test_colour_masks_with_a_palette(tmp_path):
    src = tmp_path / 'masks'
    classes = np.zeros((10, 14), np.uint8)
    classes[2:6, 2:6] = 1
    classes[6:, 8:] = 2
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)
    rgb = colours[classes]
    rgb[0, 0] = (10, 250, 10)  # an unknown colour
    save(src / 'a.png', rgb)
    palette = ['0,0,0', (255, 0, 0), '#0000ff']  # as the tool's strings, or tuples
    with pytest.raises(MaskError, match=r'colour \(10, 250, 10\) is not in the palette'):
        convert(src, tmp_path / 'l', palette=palette)
    report, out = convert(src, tmp_path / 'l', palette=palette, void_values=['10,250,10'])
    expected = classes.copy()
    expected[0, 0] = 255
    np.testing.assert_array_equal(label(tmp_path / 'l' / 'a.png'), expected)
    assert '#ff0000: 16 px in 1 file(s) -> class 1' in out and '-> 255 (void)' in out
    assert report['mapping'] == {'#000000': 0, '#0000ff': 2, '#0afa0a': 255, '#ff0000': 1}
    # the same from a palette PNG (index i = class i), nearest colour for the odd pixel
    save(tmp_path / 'pal.png', np.zeros((2, 2), np.uint8), mode='P')
    voc = colours.copy()
    voc[1], voc[2] = (128, 0, 0), (0, 128, 0)  # VOC colours of classes 1 and 2
    rgb = voc[classes]
    rgb[0, 0] = (120, 5, 0)
    save(src / 'a.png', rgb)
    convert(src, tmp_path / 'p', palette_png=str(tmp_path / 'pal.png'), unknown='nearest')
    expected[0, 0] = 1
    np.testing.assert_array_equal(label(tmp_path / 'p' / 'a.png'), expected)
    convert(src, tmp_path / 'v', palette='voc', unknown='void')  # the VOC palette by name
    expected[0, 0] = 255
    np.testing.assert_array_equal(label(tmp_path / 'v' / 'a.png'), expected)


def test_colour_mask_without_palette_and_bad_arguments(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    save(tmp_path / 'm' / 'a.png', rgb)
    with pytest.raises(MaskError, match='a colour mask') as info:
        convert(tmp_path / 'm', tmp_path / 'l')
    assert '--palette' in str(info.value)
    with pytest.raises(MaskError, match='DST must differ from SRC'):
        convert(tmp_path / 'm', tmp_path / 'm')
    with pytest.raises(MaskError, match='no such file or folder'):
        convert(tmp_path / 'nothing', tmp_path / 'l')
    with pytest.raises(MaskError, match='no masks found'):
        convert(tmp_path / 'm', tmp_path / 'l', in_suffix='_mask.png')
    with pytest.raises(MaskError, match='not both'):
        convert(tmp_path / 'm', tmp_path / 'l', palette='voc', palette_png='p.png')
    with pytest.raises(MaskError, match='for grey masks'):
        convert(tmp_path / 'm', tmp_path / 'l', palette='voc', threshold=128)
    with pytest.raises(MaskError, match='R,G,B'):
        convert(tmp_path / 'm', tmp_path / 'l', palette=['255,0'])


def test_dry_run_writes_nothing_and_output_inside_source_is_skipped(tmp_path):
    src = tmp_path / 'masks'
    save(src / 'a.png', disc_mask())
    report, out = convert(src, src / 'labels', dry_run=True)
    assert 'dry run' in out and not (src / 'labels').exists() and report['outputs'] == []
    assert report['num_classes'] == 2
    convert(src, src / 'labels')
    _, out = convert(src, src / 'labels')  # again: its own outputs are not inputs
    assert '1 mask(s)' in out


def test_quiet_api(tmp_path, capsys):
    save(tmp_path / 'm' / 'a.png', disc_mask())
    report = convert_masks(str(tmp_path / 'm'), str(tmp_path / 'l'), log=None)
    assert capsys.readouterr().out == '' and report['num_classes'] == 2
    _, out = convert(tmp_path / 'm', tmp_path / 'l', per_file=False)
    assert 'a.png' not in out and '255: ' in out  # totals only


# ---------------------------------------------------- tools/dataset_converters/masks2labels.py
@pytest.fixture
def run(load_tool, capsys):
    """``run(*args)``: the tool's ``main`` on ``args``: its exit code, stdout and stderr."""
    tool = load_tool('dataset_converters/masks2labels')

    def main(*args):
        code = tool.main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return main


def test_cli_grey_flags_report_and_errors(tmp_path, run):
    src = tmp_path / 'masks'
    mask = disc_mask(on=200, off=40)
    mask[0] = 128
    save(src / 'x_m.png', mask)
    code, out, _ = run(src, tmp_path / 'l', '--void-value', '128', '--in-suffix', '_m.png',
                       '--out-suffix', '_label.png', '--report', tmp_path / 'r.json')
    assert code == 0
    assert 'x_m.png: 40 (' in out and '128: 16 px in 1 file(s) -> 255 (void)' in out
    assert 'num_classes = 2' in out
    got = label(tmp_path / 'l' / 'x_label.png')
    assert (got[0] == 255).all() and (got[1:] == (mask[1:] == 200)).all()
    report = json.load(open(tmp_path / 'r.json'))
    assert report['mapping'] == {'40': 0, '128': 255, '200': 1}
    code, out, _ = run(src, tmp_path / 't', '--threshold', '150', '--quiet', '--dry-run')
    assert code == 0 and 'x_m.png' not in out and '128: 16 px in 1 file(s) -> class 0' in out
    assert 'dry run' in out and not (tmp_path / 't').exists()
    code, _, _ = run(src, tmp_path / 'map', '--map', '40:0', '128:255', '200:3')
    assert code == 0 and set(np.unique(label(tmp_path / 'map' / 'x_m.png'))) == {0, 3, 255}
    # a user error: exit status 1, one line on stderr, nothing on stdout
    code, out, err = run(src, tmp_path / 'bad', '--map', '40:0', '200:1')
    assert code == 1 and out == ''
    assert err == f'masks2labels: value 128 has no --map entry (1 file(s), e.g. {src}/x_m.png); ' \
        'add 128:CLASS\n'
    code, _, err = run(src, tmp_path / 'bad', '--map', '40-0')
    assert code == 1 and 'entries are VALUE:CLASS' in err
    code, _, err = run(src, tmp_path / 'bad', '--void-value', '1,2,3')
    assert code == 1 and 'grey levels are integers' in err
    code, _, err = run(src, src)
    assert code == 1 and err.startswith('masks2labels: DST must differ from SRC')


def test_cli_colour_flags(tmp_path, run):
    classes = np.zeros((6, 8), np.uint8)
    classes[1:4, 1:4] = 1
    rgb = np.array([[0, 0, 0], [255, 0, 0]], np.uint8)[classes]
    rgb[0, 0] = (250, 5, 0)
    save(tmp_path / 'm' / 'a.png', rgb)
    code, _, err = run(tmp_path / 'm', tmp_path / 'l', '--palette', '0,0,0', '#ff0000')
    assert code == 1 and 'colour (250, 5, 0) is not in the palette' in err
    code, out, _ = run(tmp_path / 'm', tmp_path / 'l', '--palette', '0,0,0', '#ff0000', '--unknown',
                       'nearest')
    expected = classes.copy()
    expected[0, 0] = 1
    assert code == 0 and '(colours)' in out and '#fa0500: 1 px in 1 file(s) -> class 1' in out
    np.testing.assert_array_equal(label(tmp_path / 'l' / 'a.png'), expected)
    code, _, _ = run(tmp_path / 'm', tmp_path / 'v', '--palette', '0,0,0', '255,0,0',
                     '--void-value', '250,5,0')
    expected[0, 0] = 255
    assert code == 0
    np.testing.assert_array_equal(label(tmp_path / 'v' / 'a.png'), expected)
    save(tmp_path / 'pal.png', np.zeros((2, 2), np.uint8))  # mode L: not a palette PNG
    code, _, err = run(tmp_path / 'm', tmp_path / 'p', '--palette-png', tmp_path / 'pal.png')
    assert code == 1 and 'not an indexed (palette) image' in err
    code, _, err = run(tmp_path / 'm', tmp_path / 'p', '--palette', 'voc', '--palette-png',
                       tmp_path / 'pal.png')
    assert code == 1 and 'not both' in err
