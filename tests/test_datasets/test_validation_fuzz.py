"""Fuzz the data loading path with random and mutated bytes: a sample either loads (a valid
image and label) or fails with an error naming its file: a BadSampleError through
ValidatedDataset, and with the checks in the pipeline (the default configs) a BadSampleError or
the loader's own error naming the file."""
import os.path as osp
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mmseg.registry import DATASETS

import fcn_plugin  # noqa: F401
from fcn_plugin.datasets.transforms import BadSampleError
from fcn_plugin.datasets.validated_dataset import ValidatedDataset

JPEG = b'\xff\xd8\xff'
PNG = b'\x89PNG\r\n\x1a\n'

PLAIN_PIPELINE = [  # the train_pipeline of configs/_base_/datasets/sbd_seg11valid.py
    dict(type='CheckSegFiles'),
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample', num_classes=21),
    dict(type='PackSegInputs'),
]


@pytest.fixture(scope='module', params=['ValidatedDataset', 'checks in the pipeline'])
def sample(request, make_voc, dataset_cfg):
    """A one-sample VOC dataset; the examples overwrite its image or its label."""
    root = tempfile.mkdtemp(prefix='fcn_fuzz_')
    name = make_voc(root, n_train=1, n_val=1)['train'][0]
    paths = {
        'img': osp.join(root, 'JPEGImages', name + '.jpg'),
        'seg': osp.join(root, 'SegmentationClass', name + '.png')
    }
    originals = {k: open(p, 'rb').read() for k, p in paths.items()}
    if request.param == 'ValidatedDataset':
        cfg = dataset_cfg(root)
    else:
        cfg = dict(dataset_cfg(root, wrap=False), pipeline=PLAIN_PIPELINE)
    yield DATASETS.build(cfg), paths, originals
    shutil.rmtree(root)


def load(dataset, paths, originals, which, data):
    for key, path in paths.items():
        with open(path, 'wb') as f:
            f.write(data if key == which else originals[key])
    try:
        out = dataset[0]
    except BadSampleError as error:
        assert paths[which] in str(error)
        return
    except Exception as error:
        # Without the wrapper a loader's own error can come through (a JPEG whose header
        # reads but whose Huffman tables do not: mmcv's "failed to load image: <path>"); it
        # must still name the file.
        assert not isinstance(dataset, ValidatedDataset) and paths[which] in str(error), error
        return
    shape = tuple(out['inputs'].shape)
    assert len(shape) == 3 and shape[1:] == tuple(out['data_samples'].gt_sem_seg.shape[-2:])
    labels = set(out['data_samples'].gt_sem_seg.data.unique().tolist())
    assert labels <= set(range(21)) | {255}


fuzz = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture])


@fuzz
@given(
    which=st.sampled_from(['img', 'seg']),
    prefix=st.sampled_from([b'', JPEG, PNG]),
    body=st.binary(max_size=2048))
def test_random_bytes(sample, which, prefix, body):
    load(*sample, which, prefix + body)


@fuzz
@given(
    which=st.sampled_from(['img', 'seg']),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
    keep=st.one_of(st.none(), st.floats(0, 1)))
def test_mutated_files(sample, which, edits, keep):
    """A real JPEG/PNG with bytes overwritten and/or cut short: headers, chunks, scan data."""
    dataset, paths, originals = sample
    data = bytearray(originals[which])
    for position, value in edits:
        data[int(position * len(data))] = value
    if keep is not None:
        data = data[:int(keep * len(data))]
    load(dataset, paths, originals, which, bytes(data))
