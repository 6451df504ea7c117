"""Bad data: one clear error naming the file and problem, or (opt-in) skipped and counted;
``tools/check_dataset.py`` lists every bad file."""
import os
import os.path as osp

import numpy as np
import pytest
from mmseg.registry import DATASETS
from PIL import Image

import fcn_plugin  # noqa: F401
from fcn_plugin.datasets import validated_dataset
from fcn_plugin.datasets.transforms import BadSampleError
from fcn_plugin.utils.label_png import save_label_png


def img(root, name):
    return osp.join(str(root), 'JPEGImages', name + '.jpg')


def seg(root, name):
    return osp.join(str(root), 'SegmentationClass', name + '.png')


def truncate(path, keep=0.6):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * keep)])


def label_values(root, name, value=30):
    label = np.array(Image.open(seg(root, name)))
    label[0, 0] = value
    save_label_png(label, seg(root, name))


def resize_label(root, name):
    label = np.array(Image.open(seg(root, name)))
    save_label_png(label[:-3], seg(root, name))


def rgb_label(root, name):
    Image.fromarray(np.zeros((20, 28, 3), np.uint8)).save(seg(root, name))


def flip_byte(path, position=0.9):
    data = bytearray(open(path, 'rb').read())
    data[int(len(data) * position)] ^= 0xFF  # in the last chunks: a checksum mismatch
    with open(path, 'wb') as f:
        f.write(bytes(data))


def random_bytes(path):
    with open(path, 'wb') as f:
        f.write(np.random.default_rng(0).bytes(500))


# kind -> (corrupt sample `name` under `root`, file named in the error, problem in the error)
BAD = {
    'truncated jpeg': (lambda r, n: truncate(img(r, n)), img, 'truncated JPEG'),
    'truncated png': (lambda r, n: truncate(seg(r, n)), seg, 'truncated PNG'),
    'corrupt image': (lambda r, n: random_bytes(img(r, n)), img, 'not an image file'),
    'corrupt png': (lambda r, n: flip_byte(seg(r, n)), seg, 'corrupt PNG'),
    'empty image': (lambda r, n: open(img(r, n), 'wb').close(), img, 'empty file'),
    'label values': (label_values, seg, 'label values 30 are outside 0..20 and 255'),
    'size mismatch': (resize_label, seg, 'label size 17x28 (HxW) differs from the image'),
    'colour label': (rgb_label, seg, 'label has shape (20, 28, 3), not (H, W)'),
}


@pytest.fixture
def voc(tmp_path, make_voc):
    ids = make_voc(tmp_path / 'voc', n_train=4, n_val=2)
    return tmp_path / 'voc', ids['train']


@pytest.mark.parametrize('kind', sorted(BAD))
def test_bad_sample_is_one_clear_error(voc, kind, dataset_cfg):
    root, names = voc
    corrupt, named, problem = BAD[kind]
    corrupt(root, names[2])
    dataset = DATASETS.build(dataset_cfg(root))
    for i in (0, 1, 3):
        assert dataset[i]['inputs'].shape[-2:] == (20, 28)
    with pytest.raises(BadSampleError) as info:
        dataset[2]
    assert str(info.value).startswith(f'bad data: sample 2: {named(root, names[2])}')
    assert problem in str(info.value)


def test_split_file_listing_a_missing_file_fails_at_build(voc, dataset_cfg):
    root, names = voc
    os.remove(img(root, names[1]))
    os.remove(seg(root, names[3]))
    with pytest.raises(BadSampleError) as info:
        DATASETS.build(dataset_cfg(root))
    message = str(info.value)
    assert message.startswith(f'bad data: {img(root, names[1])}: file not found')
    assert '2 file(s) listed by' in message and 'train.txt are missing' in message


@pytest.mark.usefixtures('one_thread')
def test_training_stops_at_the_bad_sample(voc, tmp_path, tiny_cfg, build_runner):
    root, names = voc
    truncate(img(root, names[1]))
    for workers in (0, 1):  # in the main process, and re-raised from a loader worker
        cfg = tiny_cfg(
            root,
            tmp_path / f'work{workers}',
            max_iters=20,
            train_dataloader=dict(num_workers=workers))
        runner = build_runner(cfg)
        with pytest.raises(BadSampleError, match='truncated JPEG') as info:
            runner.train()
        assert img(root, names[1]) in str(info.value)
        assert runner.iter < 4  # met within the first pass over the 4 samples
        assert not [n for n in os.listdir(tmp_path / f'work{workers}') if n.endswith('.pth')]


@pytest.fixture
def warnings_logged(monkeypatch):
    messages = []
    monkeypatch.setattr(
        validated_dataset, 'print_log', lambda msg, logger=None, level=None: messages.append(msg))
    return messages


def test_skip_mode_warns_and_counts(tmp_path, warnings_logged, make_voc, dataset_cfg):
    root = tmp_path / 'voc'
    names = make_voc(root, n_train=6, n_val=1)['train']
    os.remove(seg(root, names[0]))
    truncate(img(root, names[2]))
    label_values(root, names[3], 99)
    resize_label(root, names[4])
    dataset = DATASETS.build(dataset_cfg(root, on_error='skip'))
    assert len(dataset) == 5 and dataset.num_skipped == 1
    assert warnings_logged[0].startswith('ValidatedDataset: skipping 1 of 6 samples: 1 file(s)')
    got = [dataset[i]['data_samples'].img_path for i in range(len(dataset))]
    good = {img(root, names[1]), img(root, names[5])}
    assert set(got) == good  # each bad one replaced by the next good sample, in order
    assert dataset.num_skipped == 4
    assert 'truncated JPEG' in warnings_logged[1] and '(2 bad samples skipped so far)' in \
        warnings_logged[1]
    assert 'label values 99' in warnings_logged[2] and '(3 bad' in warnings_logged[2]
    assert 'differs from the image' in warnings_logged[3] and '(4 bad' in warnings_logged[3]
    dataset[1]  # each bad file is warned about once per process
    assert len(warnings_logged) == 4


@pytest.mark.usefixtures('one_thread')
def test_skip_mode_trains_to_the_end(voc, tmp_path, warnings_logged, tiny_cfg, build_runner):
    root, names = voc
    truncate(img(root, names[0]))
    cfg = tiny_cfg(
        root,
        tmp_path / 'work',
        max_iters=5,
        val_interval=100,
        train_dataloader=dict(dataset=dict(on_error='skip')))
    runner = build_runner(cfg)
    runner.train()
    assert runner.iter == 5
    assert runner.train_dataloader.dataset.num_skipped == 1
    assert any(img(root, names[0]) in m for m in warnings_logged)


def test_full_precheck_fails_before_training(voc, dataset_cfg):
    root, names = voc
    truncate(img(root, names[0]))
    label_values(root, names[3])
    with pytest.raises(BadSampleError) as info:
        DATASETS.build(dataset_cfg(root, precheck='full'))
    assert img(root, names[0]) in str(info.value)
    assert 'and 1 more bad samples' in str(info.value)


def test_skip_in_test_mode_drops_instead_of_substituting(voc, warnings_logged, dataset_cfg):
    root, _ = voc
    names = ['2008_000000', '2008_000001']
    label_values(root, names[0])
    cfg = dataset_cfg(root, 'val', on_error='skip')
    cfg['dataset']['test_mode'] = True
    dataset = DATASETS.build(cfg)
    assert len(dataset) == 1
    assert dataset[0]['data_samples'].img_path == img(root, names[1])


def test_check_dataset_lists_every_bad_file(tmp_path, make_voc, check_dataset, write_config):
    root = tmp_path / 'voc'
    ids = make_voc(root, n_train=8, n_val=4)
    train, val = ids['train'], ids['val']
    config = write_config(tmp_path / 'cfg.py', root, val_type='FCNVOCDataset')
    clean = check_dataset(config, '--workers', '2')
    assert clean.returncode == 0, clean.stderr[-2000:]
    assert 'train: all 8 samples OK' in clean.stdout and 'val: all 4 samples OK' in clean.stdout
    assert 'test: same dataset as above' in clean.stdout

    expected = []
    kinds = ['truncated jpeg', 'label values', 'size mismatch', 'corrupt image', 'colour label']
    for name, kind in zip(train, kinds):
        corrupt, named, problem = BAD[kind]
        corrupt(root, name)
        expected.append(f'  {named(root, name)}: {problem}')
    os.remove(img(root, train[5]))
    expected.append(f'  {img(root, train[5])}: file not found')
    for name in val[:2]:  # FCNVOCDataset refuses to build with missing files: all are listed
        os.remove(seg(root, name))
        expected.append(f'  {seg(root, name)}: file not found')
    result = check_dataset(config, '--workers', '2')
    assert result.returncode == 1
    listed = [line for line in result.stdout.splitlines() if line.startswith('  ')]
    assert len(listed) == len(expected)
    for line in expected:
        assert any(got.startswith(line) for got in listed), (line, result.stdout)
    assert 'train: 6 bad file(s)' in result.stdout and 'val: 2 bad file(s)' in result.stdout
    assert '100%' in result.stderr  # the tqdm progress bar
