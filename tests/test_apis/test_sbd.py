"""fcn_plugin.apis.sbd: SBD train and seg11valid in one VOC folder, on data fabricated in
the real layouts (SBD's cls/*.mat, a VOC devkit, VOC2011's val list), read by the reference
dataset configs; tools/dataset_converters/sbd.py, its command line."""
import os
import os.path as osp

import numpy as np
import pytest
import scipy.io
import scipy.sparse
from mmengine.config import Config
from mmseg.registry import DATASETS
from PIL import Image

import fcn_plugin  # noqa: F401  (registers FCNVOCDataset)
from fcn_plugin.apis import sbd as sbd_module
from fcn_plugin.apis.sbd import DataError, SBDSplits, convert_sbd, load_sbd_label, read_ids
from fcn_plugin.utils.label_png import save_label_png

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


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


def convert(fake_data, **kwargs):
    """``convert_sbd`` on the fake data; returns its result and the lines it logged."""
    lines = []
    result = convert_sbd(fake_data['sbd'], fake_data['voc'], log=lines.append, **kwargs)
    return result, lines


def test_convert_sbd_and_seg11valid(fake_data):
    result, lines = convert(fake_data)
    voc = fake_data['voc']
    splits = osp.join(voc, 'ImageSets', 'Segmentation')
    assert read_ids(osp.join(splits, 'sbd_train.txt')) == result.train == fake_data['train']
    assert read_ids(osp.join(splits, 'sbd_val.txt')) == result.val == fake_data['val']
    # VOC2011 val minus SBD train, in VOC2011's order
    assert read_ids(osp.join(splits, 'seg11valid.txt')) == result.seg11valid \
        == fake_data['seg11valid']
    for name, seg in fake_data['segs'].items():
        png = Image.open(osp.join(voc, 'SegmentationClassSBD', f'{name}.png'))
        assert png.mode == 'P'
        assert png.getpalette()[3:6] == [128, 0, 0]  # VOC palette: class 1
        np.testing.assert_array_equal(np.array(png), seg)
        assert osp.isfile(osp.join(voc, 'JPEGImages', f'{name}.jpg'))  # copied where missing
    assert result.written == 6 and lines == ['6 label PNGs written, 0 already there']
    assert result.split_dir == splits
    assert result.summary() == ('sbd_train: 4 images (reference: 8498), sbd_val: 2, seg11valid: '
                                f'3 (reference: 736), in {splits}')
    assert result.warning() is None


def test_convert_twice_is_safe(fake_data):
    convert(fake_data)
    label = osp.join(fake_data['voc'], 'SegmentationClassSBD', '2008_000001.png')
    before = open(label, 'rb').read()
    result, lines = convert(fake_data, nproc=2)  # worker processes
    assert lines == ['0 label PNGs written, 6 already there'] and result.written == 0
    assert result.seg11valid == fake_data['seg11valid']
    assert open(label, 'rb').read() == before
    leftovers = [f for _, _, fs in os.walk(fake_data['voc']) for f in fs if '.tmp' in f]
    assert leftovers == []


def test_missing_data_names_what_is_expected_and_the_command(fake_data, tmp_path):
    os.rename(osp.join(fake_data['sbd'], 'cls'), osp.join(fake_data['sbd'], 'cls_moved'))
    with pytest.raises(DataError) as info:
        convert(fake_data)
    msg = str(info.value)
    assert osp.join(fake_data['sbd'], 'cls') in msg and 'tools/dataset_converters/sbd.py' in msg
    assert not osp.isdir(osp.join(fake_data['voc'], 'SegmentationClassSBD'))  # nothing written
    # a missing label file, then a missing VOC2011 val list
    os.rename(osp.join(fake_data['sbd'], 'cls_moved'), osp.join(fake_data['sbd'], 'cls'))
    os.rename(osp.join(fake_data['sbd'], 'cls', '2010_000006.mat'), str(tmp_path / 'x.mat'))
    with pytest.raises(DataError, match=r'SBD label \(1 of 6 missing\)'):
        convert(fake_data)
    os.rename(str(tmp_path / 'x.mat'), osp.join(fake_data['sbd'], 'cls', '2010_000006.mat'))
    missing_list = str(tmp_path / 'nowhere' / 'val.txt')
    with pytest.raises(DataError, match='VOC2011 segmentation val list') as info:
        convert(fake_data, voc2011_val=missing_list)
    assert missing_list in str(info.value)


def test_bad_mat_file(tmp_path):
    scipy.io.savemat(tmp_path / 'x.mat', dict(GTinst=dict(Segmentation=np.zeros((2, 2)))))
    with pytest.raises(DataError, match='GTcls'):
        load_sbd_label(str(tmp_path / 'x.mat'))
    write_sbd_mat(tmp_path / 'y.mat', np.full((2, 2), 30, np.uint8))  # not a VOC class
    with pytest.raises(DataError, match='outside 0..20/255'):
        load_sbd_label(str(tmp_path / 'y.mat'))


def test_warning_when_seg11valid_is_not_the_reference_one():
    full = SBDSplits('voc', train=['x'] * 8498, seg11valid=['y'] * 1111)
    assert 'is --voc2011-val the VOC2011 list?' in full.warning()
    assert SBDSplits('voc', train=['x'] * 8498, seg11valid=['y'] * 736).warning() is None


# ------------------------------------------------------------------ the reference datasets
def _reference_dataset_cfg(voc_root, which):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'datasets', 'sbd_seg11valid.py'))
    dataset = cfg[f'{which}_dataloader']['dataset'].to_dict()
    dataset['data_root'] = voc_root
    return dataset


def test_reference_dataset_reads_converted_data(fake_data):
    convert(fake_data)
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


def test_dataset_missing_data_error(fake_data, tmp_path, monkeypatch):
    cfg = _reference_dataset_cfg(fake_data['voc'], 'train')  # before conversion
    with pytest.raises(FileNotFoundError) as info:
        DATASETS.build(cfg)
    msg = str(info.value)  # the config's command writes data/VOCdevkit/VOC2012, not this root
    assert 'sbd_train.txt' in msg and 'sbd.py' not in msg and 'Check data_root' in msg
    # where data/ is a link to the data (as often), the command is the one for this root
    os.symlink(osp.dirname(osp.dirname(fake_data['voc'])), tmp_path / 'data')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
            FileNotFoundError, match='Prepare it with: python tools/dataset_converters/sbd.py'):
        DATASETS.build(cfg)
    # a listed label that is missing
    convert(fake_data)
    os.remove(osp.join(fake_data['voc'], 'SegmentationClassSBD', '2008_000003.png'))
    with pytest.raises(FileNotFoundError, match='2008_000003.png'):
        DATASETS.build(cfg)


# --------------------------------------------------------- tools/dataset_converters/sbd.py
@pytest.fixture(scope='module')
def tool(load_tool):
    return load_tool('dataset_converters/sbd')


def test_cli_converts_and_prints_the_splits(fake_data, capsys, tool, monkeypatch):
    assert tool.main([fake_data['sbd'], fake_data['voc'], '--nproc', '1']) == 0
    out, err = capsys.readouterr()
    splits = osp.join(fake_data['voc'], 'ImageSets', 'Segmentation')
    assert out.splitlines() == [
        '6 label PNGs written, 0 already there',
        f'sbd_train: 4 images (reference: 8498), sbd_val: 2, seg11valid: 3 (reference: 736), '
        f'in {splits}'
    ]
    assert 'warning' not in err
    # the full SBD train but another seg11valid: a warning on stderr (the reference sizes of
    # the fake data changed here)
    monkeypatch.setattr(sbd_module, 'REFERENCE_SIZES', dict(train=4, seg11valid=736))
    assert tool.main([fake_data['sbd'], fake_data['voc']]) == 0
    out, err = capsys.readouterr()
    assert '0 label PNGs written, 6 already there' in out
    assert err.strip().endswith('warning: seg11valid should have 736 images with the full SBD '
                                'and VOC2011 val; is --voc2011-val the VOC2011 list?')


def test_cli_missing_data_gives_one_clear_error(fake_data, tmp_path, capsys, tool):
    os.rename(osp.join(fake_data['sbd'], 'cls'), osp.join(fake_data['sbd'], 'cls_moved'))
    assert tool.main([fake_data['sbd'], fake_data['voc']]) == 1
    err = capsys.readouterr().err
    assert err.count('error:') == 1
    assert osp.join(fake_data['sbd'], 'cls') in err
    assert 'tools/dataset_converters/sbd.py' in err
    # missing VOC2011 val list (--voc2011-val)
    os.rename(osp.join(fake_data['sbd'], 'cls_moved'), osp.join(fake_data['sbd'], 'cls'))
    missing_list = str(tmp_path / 'nowhere' / 'val.txt')
    assert tool.main([fake_data['sbd'], fake_data['voc'], '--voc2011-val', missing_list]) == 1
    assert missing_list in capsys.readouterr().err
