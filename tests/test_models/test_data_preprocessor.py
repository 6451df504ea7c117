"""PadSegDataPreProcessor: mixed-size batches, in training and test."""
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import fcn_plugin  # noqa: F401

SHAPES = [(5, 7), (9, 4)]
MEAN, STD = [1., 2., 3.], [2., 3., 4.]


def batch():
    g = torch.Generator().manual_seed(0)
    data = dict(inputs=[], data_samples=[])
    for h, w in SHAPES:
        data['inputs'].append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 3, (1, h, w), generator=g))
        data['data_samples'].append(sample)
    return data


def build(**kwargs):
    return MODELS.build(
        dict(
            type='PadSegDataPreProcessor', mean=MEAN, std=STD, bgr_to_rgb=True, pad_val=7,
            **kwargs))


@pytest.mark.parametrize('test_cfg,padded', [(None, (9, 7)), (dict(size_divisor=4), (12, 8)),
                                             (dict(size=(10, 10)), (10, 10))])
def test_mixed_size_test_batch_is_normalised_then_padded(test_cfg, padded):
    pre = build(test_cfg=test_cfg)
    out = pre(batch(), False)
    assert out['inputs'].shape == (2, 3, *padded)
    assert pre.test_cfg == test_cfg  # restored after normalising the images one by one
    plain = SegDataPreProcessor(mean=MEAN, std=STD, bgr_to_rgb=True)
    for img, inputs, sample, (h, w) in zip(batch()['inputs'], out['inputs'], out['data_samples'],
                                           SHAPES):
        expected = plain(dict(inputs=[img]), False)['inputs'][0]  # RGB, normalised
        torch.testing.assert_close(inputs[:, :h, :w], expected, rtol=0, atol=0)
        assert (inputs[:, h:] == 7).all() and (inputs[:, :, w:] == 7).all()
        assert tuple(sample.img_padding_size) == (0, padded[1] - w, 0, padded[0] - h)
        assert tuple(sample.pad_shape) == padded


def test_mixed_size_without_samples_and_training_batch():
    pre = build()
    data = batch()
    out = pre(dict(inputs=data['inputs']), False)
    assert out['inputs'].shape == (2, 3, 9, 7) and out['data_samples'] is None
    out = pre(batch(), True)  # training: the parent pads to the largest image (size_divisor=1)
    assert out['inputs'].shape == (2, 3, 9, 7)
    labels = torch.stack([s.gt_sem_seg.data for s in out['data_samples']])
    assert (labels[0, :, 5:] == 255).all() and (labels[1, :, :, 4:] == 255).all()
