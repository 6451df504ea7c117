"""SBD / seg11valid preparation and the VOC dataset, on data fabricated in the real layouts."""
import os
import os.path as osp

import numpy as np
import pytest
import scipy.io
import scipy.sparse
from mmengine.config import Config
from mmseg.registry import DATASETS
from PIL import Image

from fcn_plugin.utils.label_png import save_label_png

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def sbd(load_tool):
    return load_tool('dataset_converters/sbd')


def write_sbd_mat(path, seg):
    """A cls/*.mat as SBD ships it: 1x1 struct GTcls with Boundaries (20x1 cell of sparse
    matrices), Segmentation (HxW uint8) and CategoriesPresent."""
    boundaries = np.empty((20, 1), dtype=object)
    for k in range(20):
        boundaries[k, 0] = scipy.sparse.csc_matrix((seg == k + 1).astype(np.float64))
    cats = np.unique(seg[(seg > 0) & (seg < 21)]).astype(np.uint8).reshape(-1, 1)
    gtcls = dict(Boundaries=boundaries, Segmentation=seg.astype(np.uint8), CategoriesPresent=cats)
    scipy.io.savemat(path, dict(GTcls=gtcls))


def write_jpg(path, h, w, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)


@pytest.fixture
def fake_data(tmp_path):
    """SBD benchmark_RELEASE/dataset, a VOC2012 devkit and VOC2011's val list."""
    rng = np.random.default_rng(0)
    sbd_dir = tmp_path / 'sbd' / 'benchmark_RELEASE' / 'dataset'
    (sbd_dir / 'img').mkdir(parents=True)
    (sbd_dir / 'cls').mkdir()
    voc = tmp_path / 'VOCdevkit' / 'VOC2012'
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        (voc / sub).mkdir(parents=True)
    voc11 = tmp_path / 'VOCdevkit' / 'VOC2011' / 'ImageSets' / 'Segmentation'
    voc11.mkdir(parents=True)

    train = ['2008_000001', '2008_000002', '2008_000003', '2009_000004']
    val = ['2008_000005', '2010_000006']
    segs = {}
    for i, name in enumerate(train + val):
        h, w = 7 + i, 9 + 2 * i
        segs[name] = rng.integers(0, 21, (h, w)).astype(np.uint8)
        write_sbd_mat(sbd_dir / 'cls' / f'{name}.mat', segs[name])
        write_jpg(sbd_dir / 'img' / f'{name}.jpg', h, w, i)
        if i % 2 == 0:  # half of them are in VOC already
            write_jpg(voc / 'JPEGImages' / f'{name}.jpg', h, w, i)
    (sbd_dir / 'train.txt').write_text('\n'.join(train) + '\n')
    (sbd_dir / 'val.txt').write_text('\n'.join(val) + '\n')
    # VOC2011 val: two images in SBD train (excluded from seg11valid), three not
    voc11_val = ['2008_000002', '2008_000007', '2009_000004', '2010_000008', '2008_000005']
    for i, name in enumerate(voc11_val):
        write_jpg(voc / 'JPEGImages' / f'{name}.jpg', 6, 8, 100 + i)
        label = rng.integers(0, 21, (6, 8)).astype(np.uint8)
        label[0] = 255
        save_label_png(label, str(voc / 'SegmentationClass' / f'{name}.png'))
    (voc11 / 'val.txt').write_text('\n'.join(voc11_val) + '\n')
    return dict(
        sbd=str(sbd_dir),
        voc=str(voc),
        train=train,
        val=val,
        segs=segs,
        seg11valid=['2008_000007', '2010_000008', '2008_000005'])


def test_convert_sbd_and_seg11valid(fake_data, capsys, sbd):
    assert sbd.main([fake_data['sbd'], fake_data['voc']]) == 0
    voc = fake_data['voc']
    splits = osp.join(voc, 'ImageSets', 'Segmentation')
    assert sbd.read_ids(osp.join(splits, 'sbd_train.txt')) == fake_data['train']
    assert sbd.read_ids(osp.join(splits, 'sbd_val.txt')) == fake_data['val']
    # VOC2011 val minus SBD train, in VOC2011's order
    assert sbd.read_ids(osp.join(splits, 'seg11valid.txt')) == fake_data['seg11valid']
    for name, seg in fake_data['segs'].items():
        png = Image.open(osp.join(voc, 'SegmentationClassSBD', f'{name}.png'))
        assert png.mode == 'P'
        assert png.getpalette()[3:6] == [128, 0, 0]  # VOC palette: class 1
        np.testing.assert_array_equal(np.array(png), seg)
        assert osp.isfile(osp.join(voc, 'JPEGImages', f'{name}.jpg'))  # copied where missing
    assert '6 label PNGs written' in capsys.readouterr().out


def test_convert_twice_is_safe(fake_data, capsys, sbd):
    assert sbd.main([fake_data['sbd'], fake_data['voc']]) == 0
    label = osp.join(fake_data['voc'], 'SegmentationClassSBD', '2008_000001.png')
    before = open(label, 'rb').read()
    capsys.readouterr()
    assert sbd.main([fake_data['sbd'], fake_data['voc'], '--nproc', '2']) == 0
    assert '0 label PNGs written, 6 already there' in capsys.readouterr().out
    assert open(label, 'rb').read() == before
    leftovers = [f for _, _, fs in os.walk(fake_data['voc']) for f in fs if '.tmp' in f]
    assert leftovers == []


def test_missing_data_gives_one_clear_error(fake_data, tmp_path, capsys, sbd):
    os.rename(osp.join(fake_data['sbd'], 'cls'), osp.join(fake_data['sbd'], 'cls_moved'))
    assert sbd.main([fake_data['sbd'], fake_data['voc']]) == 1
    err = capsys.readouterr().err
    assert err.count('error:') == 1
    assert osp.join(fake_data['sbd'], 'cls') in err
    assert 'tools/dataset_converters/sbd.py' in err
    # missing VOC2011 val list
    os.rename(osp.join(fake_data['sbd'], 'cls_moved'), osp.join(fake_data['sbd'], 'cls'))
    missing_list = str(tmp_path / 'nowhere' / 'val.txt')
    assert sbd.main([fake_data['sbd'], fake_data['voc'], '--voc2011-val', missing_list]) == 1
    assert missing_list in capsys.readouterr().err


def test_bad_mat_file(tmp_path, sbd):
    scipy.io.savemat(tmp_path / 'x.mat', dict(GTinst=dict(Segmentation=np.zeros((2, 2)))))
    with pytest.raises(sbd.DataError, match='GTcls'):
        sbd.load_sbd_label(str(tmp_path / 'x.mat'))


def _reference_dataset_cfg(voc_root, which):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'datasets', 'sbd_seg11valid.py'))
    dataset = cfg[f'{which}_dataloader']['dataset'].to_dict()
    dataset['data_root'] = voc_root
    return dataset


def test_reference_dataset_reads_converted_data(fake_data, sbd):
    import fcn_plugin  # noqa: F401  (registers FCNVOCDataset)
    sbd.main([fake_data['sbd'], fake_data['voc']])
    train = DATASETS.build(_reference_dataset_cfg(fake_data['voc'], 'train'))
    val = DATASETS.build(_reference_dataset_cfg(fake_data['voc'], 'val'))
    assert len(train) == len(fake_data['train']) and len(val) == len(fake_data['seg11valid'])
    assert len(train.metainfo['classes']) == 21
    item = train[0]  # full image, no resize: label and image keep the original size
    name = osp.basename(item['data_samples'].img_path)[:-4]
    seg = item['data_samples'].gt_sem_seg.data.numpy()[0]
    np.testing.assert_array_equal(seg, fake_data['segs'][name])
    assert tuple(item['inputs'].shape[1:]) == fake_data['segs'][name].shape
    assert 255 in val[0]['data_samples'].gt_sem_seg.data  # void kept for the metric to drop


def test_dataset_missing_data_error(fake_data, sbd):
    import fcn_plugin  # noqa: F401
    cfg = _reference_dataset_cfg(fake_data['voc'], 'train')  # before conversion
    with pytest.raises(FileNotFoundError) as info:
        DATASETS.build(cfg)
    msg = str(info.value)
    assert 'sbd_train.txt' in msg and 'tools/dataset_converters/sbd.py' in msg
    # a listed label that is missing
    sbd.main([fake_data['sbd'], fake_data['voc']])
    os.remove(osp.join(fake_data['voc'], 'SegmentationClassSBD', '2008_000003.png'))
    with pytest.raises(FileNotFoundError, match='2008_000003.png'):
        DATASETS.build(cfg)
