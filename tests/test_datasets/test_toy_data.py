"""The toy VOC dataset of the demo: deterministic, VOC layout, varied, readable by the config."""
import hashlib
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def toy(load_tool):
    return load_tool('dataset_converters/make_toy_voc')


def _digest(folder):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(folder)):
        for f in sorted(files):
            h.update(f.encode())
            h.update(open(osp.join(dirpath, f), 'rb').read())
    return h.hexdigest()


@pytest.fixture(scope='module')
def toy_dir(tmp_path_factory, toy):
    out = str(tmp_path_factory.mktemp('toy'))
    toy.main(['--out-dir', out, '--num-train', '24', '--num-val', '8'])
    return out


def test_layout_and_determinism(toy_dir, tmp_path, toy):
    splits = osp.join(toy_dir, 'ImageSets', 'Segmentation')
    train = open(osp.join(splits, 'train.txt')).read().split()
    val = open(osp.join(splits, 'val.txt')).read().split()
    assert len(train) == 24 and len(val) == 8 and not set(train) & set(val)
    for name in train + val:
        assert osp.isfile(osp.join(toy_dir, 'JPEGImages', name + '.jpg'))
        assert osp.isfile(osp.join(toy_dir, 'SegmentationClass', name + '.png'))
    again = str(tmp_path / 'again')
    toy.main(['--out-dir', again, '--num-train', '24', '--num-val', '8'])
    assert _digest(again) == _digest(toy_dir)
    toy.main(['--out-dir', again, '--num-train', '24', '--num-val', '8'])  # rerun in place
    assert _digest(again) == _digest(toy_dir)


def test_labels_are_varied_voc_palette_pngs(toy_dir, toy):
    names = open(osp.join(toy_dir, 'ImageSets', 'Segmentation', 'train.txt')).read().split()
    sizes, seen, objects_per_image = set(), set(), []
    for name in names:
        png = Image.open(osp.join(toy_dir, 'SegmentationClass', name + '.png'))
        img = Image.open(osp.join(toy_dir, 'JPEGImages', name + '.jpg'))
        assert png.mode == 'P' and png.size == img.size
        assert png.getpalette()[:6] == [0, 0, 0, 128, 0, 0]
        label = np.array(png)
        values = set(np.unique(label).tolist())
        assert values <= set(range(len(toy.TOY_CLASSES))) | {255}
        assert 255 in values  # void borders, as in VOC
        # void only next to a class change: no void deep inside background
        assert (label[3:-3, 3:-3] == 255).mean() < 0.5
        seen |= values
        sizes.add(img.size)
        objects_per_image.append(len(values - {0, 255}))
    assert seen == set(range(len(toy.TOY_CLASSES))) | {255}
    assert len(sizes) > 5  # full images of varied size
    assert max(objects_per_image) >= 3 and min(objects_per_image) >= 1


def test_classes_match_dataset_and_config(toy_dir, toy):
    from fcn_plugin.datasets import ToyVOCDataset
    assert ToyVOCDataset.METAINFO['classes'] == toy.TOY_CLASSES
    palette = toy.voc_palette()[:len(toy.TOY_CLASSES)].tolist()
    assert ToyVOCDataset.METAINFO['palette'] == palette
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'fcn8s_vgg16-tiny_toyvoc.py'))
    assert cfg.model.decode_head.num_classes == len(toy.TOY_CLASSES)
    from mmseg.registry import DATASETS
    dataset = cfg.val_dataloader.dataset.to_dict()
    dataset['data_root'] = toy_dir
    built = DATASETS.build(dataset)
    assert len(built) == 8
    sample = built[0]['data_samples']
    assert sample.gt_sem_seg.data.shape[1:] == sample.ori_shape  # no resize


def test_missing_toy_data_names_the_command(tmp_path):
    from mmseg.registry import DATASETS

    import fcn_plugin  # noqa: F401
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'fcn8s_vgg16-tiny_toyvoc.py'))
    dataset = cfg.train_dataloader.dataset.to_dict()
    dataset['data_root'] = str(tmp_path / 'toy')
    with pytest.raises(FileNotFoundError, match='make_toy_voc.py'):
        DATASETS.build(dataset)


def test_voc_sized_set_in_the_recipe_layout_reads_with_the_voc_config(tmp_path, toy):
    """--size 37 50 --sbd-layout: every image that size, train labels in SegmentationClassSBD and
    the splits the *_vgg16_voc.py configs read (how the README times tools/train.py)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    from fcn_plugin.utils import load_config
    out = tmp_path / 'synth'
    toy.make_toy_voc(str(out), num_train=3, num_val=2, size=(37, 50), sbd_layout=True)
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
