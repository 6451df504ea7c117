"""Hostile files: a decompression bomb (a 2.6 MB PNG declaring 30000x30000 pixels, saved as
.jpg) is refused from its header before anything decodes it, on the test pipeline that starts
with LoadImageFromFile and in tools/check_dataset.py (peak memory measured in a subprocess); a
truncated JPEG is named as truncated; a symlink loop as a symlink loop."""
import os
import os.path as osp
import struct
import subprocess
import sys
import zlib

import pytest
from mmseg.registry import DATASETS

from fcn_plugin.datasets.file_checks import inspect_file
from fcn_plugin.datasets.label_checks import count_labels
from fcn_plugin.datasets.missing_files import describe_missing, file_problem, missing_files
from fcn_plugin.datasets.transforms import BadSampleError, CheckSegFiles

PEAK_LIMIT_MIB = 1024
# our configs' test pipeline: LoadImageFromFile first (mmseg's inference API replaces it)
TEST_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='CheckSegFiles'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),
    dict(type='PackSegInputs')
]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def write_bomb(path, width=30000, height=30000, channels=3):
    """A valid PNG of ``width x height`` zero pixels: ~2.6 MB on disk, 2.7 GB decoded. The zlib
    stream repeats one deflate block of 1000 zero rows (ended by a full flush, so the blocks are
    identical) instead of compressing gigabytes; the Adler-32 of n zeros is (n % 65521) << 16 | 1.
    """
    row, rows = width * channels + 1, 1000
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = block.compress(bytes(row * rows)) + block.flush(zlib.Z_FULL_FLUSH)
    n, rest = divmod(height, rows)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = tail.compress(bytes(row * rest)) + tail.flush(zlib.Z_FINISH)
    adler = ((row * height) % 65521) << 16 | 1
    colour = {1: 0, 3: 2}[channels]
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n')
        f.write(_chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, colour, 0, 0, 0)))
        f.write(_chunk(b'IDAT', b'\x78\xda' + block * n + tail + struct.pack('>I', adler)))
        f.write(_chunk(b'IEND', b''))


def test_bomb_writer_makes_a_valid_png(tmp_path):
    """The same writer, small enough to decode: a PNG of zeros of the declared size."""
    import numpy as np
    from PIL import Image
    write_bomb(tmp_path / 'small.png', 40, 2500)
    pixels = np.asarray(Image.open(tmp_path / 'small.png'))
    assert pixels.shape == (2500, 40, 3) and not pixels.any()


@pytest.fixture(scope='module')
def bomb_voc(tmp_path_factory, make_voc):
    """A make_voc folder whose first val image is a bomb (PNG data in a .jpg file)."""
    root = tmp_path_factory.mktemp('bomb') / 'voc'
    name = make_voc(root, n_train=1, n_val=2)['val'][0]
    path = root / 'JPEGImages' / f'{name}.jpg'
    write_bomb(path)
    assert path.stat().st_size < 3e6
    return root, str(path)


def val_dataset(root, type='FCNVOCDataset', wrap=False):
    dataset = dict(
        type=type,
        data_root=str(root),
        test_mode=True,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=TEST_PIPELINE)
    return dict(type='ValidatedDataset', dataset=dataset) if wrap else dataset


# In one fresh process: tools/test.py's data path (val datasets of a config, the first sample
# through the pipeline), then tools/check_dataset.py (one worker); the process's peak memory
# bounds both
MEASURED = '''
import sys
import fcn_plugin
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS
init_default_scope('mmseg')
for cfg in eval(sys.argv[1]):
    try:
        DATASETS.build(cfg)[0]
    except Exception as error:
        print(f'{type(error).__name__}: {error}')
from fcn_plugin.apis.dataset_check import check_dataset
try:
    code = 0 if check_dataset(sys.argv[2], ['val'], 1).ok else 1
except SystemExit as stop:
    code = stop.code
print('exit', code)
# VmHWM: this process's own peak (ru_maxrss would include the pytest process's size, which Linux
# keeps across fork and exec)
print('peak_kib', [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1])
'''


@pytest.fixture(scope='module')
def measured(bomb_voc, repo_root, tmp_path_factory):
    """The output of :data:`MEASURED` on the bomb folder, and its peak memory (MiB)."""
    root, _ = bomb_voc
    config = tmp_path_factory.mktemp('bomb_cfg') / 'bomb_cfg.py'
    config.write_text("custom_imports = dict(imports=['fcn_plugin'])\ndefault_scope = 'mmseg'\n"
                      f'val_dataloader = dict(dataset={val_dataset(root)!r})\n')
    cfgs = [val_dataset(root), val_dataset(root, 'PascalVOCDataset', wrap=True)]
    result = subprocess.run([sys.executable, '-c', MEASURED,
                             repr(cfgs), str(config)],
                            capture_output=True,
                            text=True,
                            cwd=repo_root,
                            env=dict(os.environ, OMP_NUM_THREADS='1'))
    lines = result.stdout.strip().splitlines()
    assert lines and lines[-1].startswith('peak_kib'), result.stdout + result.stderr[-3000:]
    peak = int(lines[-1].split()[1]) / 1024
    print(f'dataset[0] and check_dataset: peak {peak:.0f} MiB')
    return result.stdout, peak


def test_bomb_in_val_split_is_refused_before_decoding(bomb_voc, measured):
    """Our dataset, and mmseg's inside ValidatedDataset, both with the test pipeline."""
    _, bomb = bomb_voc
    output, peak = measured
    refusals = [line for line in output.splitlines() if line.startswith('BadSampleError')]
    assert len(refusals) == 2, output
    for line in refusals:
        assert line.startswith(f'BadSampleError: bad data: sample 0: {bomb}: image too large: '
                               'its header declares 30000x30000 = 900 Mpixel'), line
        assert 'max_pixels' in line
    assert peak < PEAK_LIMIT_MIB


def test_check_dataset_refuses_a_bomb_with_bounded_memory(bomb_voc, measured):
    _, bomb = bomb_voc
    output, peak = measured
    assert f'  {bomb}: image too large' in output and 'exit 1' in output, output
    assert peak < PEAK_LIMIT_MIB


def test_label_bomb_and_configurable_limit(tmp_path, make_voc):
    root = tmp_path / 'voc'
    name = make_voc(root, n_train=1, n_val=2)['val'][0]
    label = str(root / 'SegmentationClass' / f'{name}.png')
    write_bomb(label, 12000, 10000, channels=1)  # 120 Mpixel, grey
    problem, _ = inspect_file(label)
    assert problem.startswith('image too large: its header declares 12000x10000 = 120 Mpixel')
    results = dict(img_path=None, seg_map_path=label)
    with pytest.raises(BadSampleError, match='over the limit of 100 Mpixel'):
        CheckSegFiles()(dict(results))
    assert CheckSegFiles(max_pixels=200_000_000)(dict(results))['seg_files_checked']
    # DataCheckHook's label reader leaves it undecoded (the per-sample check names it)
    counts, total = count_labels(DATASETS.build(val_dataset(root)))
    assert total == 2 and label not in counts and len(counts) == 1


def truncate(path, keep=0.5):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * keep)])


def test_truncated_jpeg_on_the_test_pipeline_is_named(tmp_path, make_voc):
    """LoadImageFromFile comes first, yet the file is checked before it decodes anything."""
    root = tmp_path / 'voc'
    name = make_voc(root, n_train=1, n_val=1)['val'][0]
    path = str(root / 'JPEGImages' / f'{name}.jpg')
    truncate(path, 0.3)
    dataset = DATASETS.build(val_dataset(root))
    with pytest.raises(BadSampleError) as error:
        dataset[0]
    assert str(error.value).startswith(f'bad data: sample 0: {path}: truncated JPEG')


def test_symlink_loop_is_named_as_such(tmp_path, make_voc):
    loop = tmp_path / 'loop.png'
    os.symlink(loop, loop)
    assert file_problem(str(loop)).startswith('symlink loop')
    assert inspect_file(str(loop))[0].startswith('symlink loop')
    missing = missing_files([dict(img_path=str(loop))])
    assert 'loop.png (symlink loop' in describe_missing(missing, 'val.txt')
    # in a dataset's split: the build-time error says so
    root = tmp_path / 'voc'
    name = make_voc(root, n_train=1, n_val=1)['val'][0]
    label = root / 'SegmentationClass' / f'{name}.png'
    label.unlink()
    os.symlink(label, label)
    with pytest.raises(FileNotFoundError, match=f'{label} \\(symlink loop'):
        DATASETS.build(val_dataset(root))
    with pytest.raises(BadSampleError, match=f'{label}: symlink loop'):
        DATASETS.build(val_dataset(root, 'PascalVOCDataset', wrap=True))
    assert osp.islink(label)
