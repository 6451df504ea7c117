"""The toy data of the demo and the tests (fcn_plugin.datasets.toy_data, fcn_plugin.apis.toy_data):
deterministic, VOC layout, varied, readable by the config; the binary variant with 0/255 masks;
tools/dataset_converters/make_toy_voc.py, its command line."""
import hashlib
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from fcn_plugin.apis.toy_data import make_toy_data
from fcn_plugin.datasets.toy_data import make_toy_binary, make_toy_voc
from fcn_plugin.datasets.toy_voc import TOY_CLASSES
from fcn_plugin.utils.label_png import voc_palette

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _digest(folder):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(folder)):
        for f in sorted(files):
            h.update(f.encode())
            h.update(open(osp.join(dirpath, f), 'rb').read())
    return h.hexdigest()


@pytest.fixture(scope='module')
def toy_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('toy'))
    make_toy_voc(out, num_train=24, num_val=8)
    return out


def test_layout_and_determinism(toy_dir, tmp_path):
    splits = osp.join(toy_dir, 'ImageSets', 'Segmentation')
    train = open(osp.join(splits, 'train.txt')).read().split()
    val = open(osp.join(splits, 'val.txt')).read().split()
    assert len(train) == 24 and len(val) == 8 and not set(train) & set(val)
    for name in train + val:
        assert osp.isfile(osp.join(toy_dir, 'JPEGImages', name + '.jpg'))
        assert osp.isfile(osp.join(toy_dir, 'SegmentationClass', name + '.png'))
    # the same seed writes the same files, also over its own output; another seed does not
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    assert make_toy_voc(a, num_train=3, num_val=1) == dict(train=train[:3], val=[train[3]])
    make_toy_voc(b, num_train=3, num_val=1)
    assert _digest(a) == _digest(b)
    make_toy_voc(b, num_train=3, num_val=1)  # rerun in place
    assert _digest(a) == _digest(b)
    assert not [f for _, _, fs in os.walk(b) for f in fs if '.tmp' in f]
    make_toy_voc(b, num_train=3, num_val=1, seed=1)
    assert _digest(a) != _digest(b)


def test_labels_are_varied_voc_palette_pngs(toy_dir):
    names = open(osp.join(toy_dir, 'ImageSets', 'Segmentation', 'train.txt')).read().split()
    sizes, seen, objects_per_image = set(), set(), []
    for name in names:
        png = Image.open(osp.join(toy_dir, 'SegmentationClass', name + '.png'))
        img = Image.open(osp.join(toy_dir, 'JPEGImages', name + '.jpg'))
        assert png.mode == 'P' and png.size == img.size
        assert png.getpalette()[:6] == [0, 0, 0, 128, 0, 0]
        label = np.array(png)
        values = set(np.unique(label).tolist())
        assert values <= set(range(len(TOY_CLASSES))) | {255}
        assert 255 in values  # void borders, as in VOC
        # void only next to a class change: no void deep inside background
        assert (label[3:-3, 3:-3] == 255).mean() < 0.5
        seen |= values
        sizes.add(img.size)
        objects_per_image.append(len(values - {0, 255}))
    assert seen == set(range(len(TOY_CLASSES))) | {255}
    assert len(sizes) > 5  # full images of varied size
    assert max(objects_per_image) >= 3 and min(objects_per_image) >= 1


def test_classes_match_dataset_and_config(toy_dir):
    from fcn_plugin.datasets import ToyVOCDataset
    assert ToyVOCDataset.METAINFO['classes'] == TOY_CLASSES
    palette = voc_palette()[:len(TOY_CLASSES)].tolist()
    assert ToyVOCDataset.METAINFO['palette'] == palette
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'fcn8s_vgg16-tiny_toyvoc.py'))
    assert cfg.model.decode_head.num_classes == len(TOY_CLASSES)
    from mmseg.registry import DATASETS
    dataset = cfg.val_dataloader.dataset.to_dict()
    dataset['data_root'] = toy_dir
    built = DATASETS.build(dataset)
    assert len(built) == 8
    sample = built[0]['data_samples']
    assert sample.gt_sem_seg.data.shape[1:] == sample.ori_shape  # no resize


def test_missing_toy_data_names_the_command_only_for_its_own_folder(tmp_path, monkeypatch):
    from mmseg.registry import DATASETS

    import fcn_plugin  # noqa: F401
    monkeypatch.chdir(tmp_path)  # data/toy, data/toy_binary: not there
    for name in ('fcn8s_vgg16-tiny_toyvoc.py', 'fcn8s_vgg16-tiny_toybinary.py'):
        dataset = Config.fromfile(osp.join(ROOT, 'configs', name)).train_dataloader.dataset
        with pytest.raises(FileNotFoundError, match='Prepare it with: .*make_toy_voc.py'):
            DATASETS.build(dataset.to_dict())
        # a child config pointing the dataset at its own data: not the toy generator
        with pytest.raises(FileNotFoundError) as error:
            DATASETS.build(dict(dataset.to_dict(), data_root='data/mine'))
        assert 'make_toy_voc' not in str(error.value) and 'Check data_root' in str(error.value)


def test_voc_sized_set_in_the_recipe_layout_reads_with_the_voc_config(tmp_path):
    """size (37, 50), sbd_layout: every image that size, train labels in SegmentationClassSBD and
    the splits the *_vgg16_voc.py configs read (how the README times tools/train.py)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    from fcn_plugin.utils import load_config
    out = tmp_path / 'synth'
    splits = make_toy_data(str(out), num_train=3, num_val=2, size=(37, 50), sbd_layout=True)
    assert (splits.train, splits.val) == (['toy_0000', 'toy_0001',
                                           'toy_0002'], ['toy_0003', 'toy_0004'])
    init_default_scope('mmseg')
    cfg = load_config(osp.join(ROOT, 'configs', 'fcn8s_vgg16_voc.py'))
    for loader, count in (('train_dataloader', 3), ('val_dataloader', 2)):
        dataset_cfg = cfg[loader].dataset
        dataset_cfg.data_root = str(out)
        dataset = DATASETS.build(dataset_cfg)
        assert len(dataset) == count
        sample = dataset[0]
        assert sample['inputs'].shape == (3, 37, 50)
        assert sample['data_samples'].gt_sem_seg.data.shape == (1, 37, 50)


def test_binary_toy_with_0_255_masks(tmp_path):
    out = str(tmp_path / 'binary')
    assert make_toy_binary(
        out, num_train=2, num_val=1, size=(30, 40)) == dict(
            train=['toy_0000', 'toy_0001'], val=['toy_0002'])
    for split, name in (('train', 'toy_0000'), ('train', 'toy_0001'), ('val', 'toy_0002')):
        img = Image.open(osp.join(out, 'images', split, name + '.jpg'))
        mask = Image.open(osp.join(out, 'masks', split, name + '.png'))
        assert img.size == mask.size == (40, 30) and mask.mode == 'L'  # as annotation tools save
        assert set(np.unique(np.array(mask))) == {0, 255}  # no void border: only 0 and 255
    # the same shapes as the VOC toy data of the same seed, foreground = any object
    make_toy_voc(str(tmp_path / 'voc'), num_train=2, num_val=1, size=(30, 40))
    voc = np.array(Image.open(str(tmp_path / 'voc' / 'SegmentationClass' / 'toy_0001.png')))
    mask = np.array(Image.open(osp.join(out, 'masks', 'train', 'toy_0001.png')))
    inner = (voc != 255)  # away from the void borders the VOC labels have
    np.testing.assert_array_equal(mask[inner] == 255, voc[inner] > 0)


# ----------------------------------------------------- tools/dataset_converters/make_toy_voc.py
@pytest.fixture(scope='module')
def tool(load_tool):
    return load_tool('dataset_converters/make_toy_voc')


def test_cli_writes_what_the_api_writes(tmp_path, capsys, tool):
    args = ['--num-train', '2', '--num-val', '1', '--seed', '3', '--size', '20', '30']
    out = str(tmp_path / 'cli')
    assert tool.main(['--out-dir', out, *args]) == 0
    assert capsys.readouterr().out == (f'toy VOC dataset: 2 train + 1 val images, classes '
                                       f'{TOY_CLASSES}, in {out}\n')
    make_toy_voc(str(tmp_path / 'api'), num_train=2, num_val=1, seed=3, size=(20, 30))
    assert _digest(out) == _digest(str(tmp_path / 'api'))
    assert tool.main(['--out-dir', str(tmp_path / 'sbd'), '--sbd-layout', *args]) == 0
    split_dir = tmp_path / 'sbd' / 'ImageSets' / 'Segmentation'
    assert sorted(os.listdir(split_dir)) == ['sbd_train.txt', 'seg11valid.txt']
    assert sorted(os.listdir(tmp_path / 'sbd' /
                             'SegmentationClassSBD')) == ['toy_0000.png', 'toy_0001.png']
    capsys.readouterr()
    assert tool.main(['--binary', '--out-dir', str(tmp_path / 'bin'), *args]) == 0
    printed = capsys.readouterr().out
    assert 'toy binary dataset: 2 train + 1 val images with 0/255 masks' in printed
    assert f'masks2labels.py {tmp_path}/bin/masks {tmp_path}/bin/labels' in printed
    make_toy_binary(str(tmp_path / 'bin_api'), num_train=2, num_val=1, seed=3, size=(20, 30))
    assert _digest(str(tmp_path / 'bin')) == _digest(str(tmp_path / 'bin_api'))


def test_default_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert make_toy_data(num_train=1, num_val=0, size=(8, 8)).out_dir == 'data/toy'
    binary = make_toy_data(num_train=1, num_val=0, size=(8, 8), binary=True)
    assert binary.out_dir == 'data/toy_binary' and binary.binary
    assert (tmp_path / 'data' / 'toy' / 'JPEGImages' / 'toy_0000.jpg').is_file()
    assert (tmp_path / 'data' / 'toy_binary' / 'masks' / 'train' / 'toy_0000.png').is_file()
