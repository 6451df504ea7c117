"""The mask forms users bring (issue 20's trial: 0/1, 0/255, JPEG, VOC palette with a border,
grey levels, RGBA, tiny; fixture ``mask_forms``) through ``fcn_plugin.apis.convert_masks`` (what
``tools/dataset_converters/masks2labels.py`` calls): the defaults, or the one flag a form needs,
which the error without it names; and the note when level 255 becomes void by default."""
import numpy as np
import pytest
from PIL import Image

from fcn_plugin.apis.masks import MaskError, convert_masks
from fcn_plugin.utils.label_png import voc_palette

FORMS = ('zero_one', 'zero_255', 'zero_one_void', 'jpeg', 'voc_palette', 'voc_rgb', 'grey_levels',
         'rgba', 'tiny')


@pytest.fixture(scope='module')
def forms(mask_forms, tmp_path_factory):
    return mask_forms(tmp_path_factory.mktemp('mask_forms'))


def convert(src, dst, **flags):
    lines = []
    report = convert_masks(str(src), str(dst), log=lines.append, **flags)
    return report, '\n'.join(lines)


def test_the_fixture_set(forms):
    assert set(forms) == set(FORMS)
    assert Image.open(forms['voc_palette']['mask']).mode == 'P'
    assert Image.open(forms['rgba']['mask']).mode == 'RGBA'
    assert Image.open(forms['tiny']['mask']).size == (3, 2)
    jpeg = np.unique(np.array(Image.open(forms['jpeg']['mask'])))
    assert len(jpeg) > 2 and not set(jpeg) <= {0, 255}  # compression noise around 0 and 255
    for form in forms.values():
        assert Image.open(form['image']).size == Image.open(form['mask']).size


@pytest.mark.parametrize('name', FORMS)
def test_each_form_becomes_its_label(forms, tmp_path, name):
    form = forms[name]
    if form['needs']:  # the defaults stop, naming the flag
        with pytest.raises(MaskError) as info:
            convert(form['mask'], tmp_path / 'default.png')
        assert form['needs'] in str(info.value) and '\n' not in str(info.value)
        assert not (tmp_path / 'default.png').exists()
    report, out = convert(form['mask'], tmp_path / 'label.png', **form['flags'])
    np.testing.assert_array_equal(np.array(Image.open(tmp_path / 'label.png')), form['expected'])
    assert report['num_classes'] == int(form['expected'][form['expected'] != 255].max()) + 1
    void_note = [n for n in report['notes'] if 'void' in n]
    if name in ('voc_palette', 'zero_one_void'):  # 255 became void by default: said so
        assert len(void_note) == 1 and f'note: {void_note[0]}' in out
        assert '--map 0:0 1:1 255:2' in void_note[0]  # how to undo it
        assert ("VOC's void colour" in void_note[0]) == (name == 'voc_palette')
    elif name == 'grey_levels':  # 255 stayed a class: the note names --void-value
        assert '--void-value 255' in void_note[0]
    else:
        assert not void_note


def test_voc_palette_with_a_user_palette_and_mixed_masks(forms, tmp_path):
    # an RGB mask in VOC colours with the user's own palette: the cream border is void, said so
    report, _ = convert(
        forms['voc_rgb']['mask'],
        tmp_path / 'a.png',
        palette=[tuple(c) for c in voc_palette(2).tolist()])
    np.testing.assert_array_equal(
        np.array(Image.open(tmp_path / 'a.png')), forms['voc_rgb']['expected'])
    assert any('add it to --palette' in n for n in report['notes'])
    # 0/255 masks among 0/1/255 ones: the note names the --map for 255 as foreground
    mixed = tmp_path / 'mixed'
    mixed.mkdir()
    for name in ('zero_one_void', 'zero_255'):
        (mixed / f'{name}.png').write_bytes(forms[name]['mask'].read_bytes())
    report, _ = convert(mixed, tmp_path / 'm')
    assert 'zero_255.png: if 255 is their foreground, --map 0:0 1:1 255:1' in report['notes'][0]
    # levels 0 and 255 only stay 0 -> 0, 255 -> 1, even in VOC's palette (said so)
    voc = Image.open(forms['voc_palette']['mask'])
    binary = Image.fromarray((np.array(voc) == 255).astype(np.uint8) * 255)
    binary.putpalette(voc.getpalette())  # mode P, index 255 cream
    binary.save(str(tmp_path / 'v.png'))
    report, _ = convert(tmp_path / 'v.png', tmp_path / 'v_label.png')
    assert report['mapping'] == {'0': 0, '255': 1} and '--void-value 255' in report['notes'][0]
