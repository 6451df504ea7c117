"""SpatialPixelSampler: the paper's loss sampling, keeping final-layer cells with prob. p."""
from types import SimpleNamespace

import pytest
import torch
from mmseg.registry import MODELS, TASK_UTILS

import fcn_plugin  # noqa: F401


def build(**kwargs):
    return TASK_UTILS.build(
        dict(type='SpatialPixelSampler', **kwargs),
        default_args=dict(context=SimpleNamespace(ignore_index=255)))


def test_cells_are_kept_or_dropped_whole():
    torch.manual_seed(0)
    label = torch.randint(0, 3, (2, 1, 70, 45))
    label[:, :, :5] = 255
    weight = build(keep_prob=0.5, cell_size=16).sample(torch.zeros(2, 3, 70, 45), label)
    assert weight.shape == (2, 70, 45) and weight.dtype == torch.float32
    assert (weight[label[:, 0] == 255] == 0).all()
    valid = label[:, 0] != 255
    for n in range(2):
        for y in range(0, 70, 16):
            for x in range(0, 45, 16):
                cell = weight[n, y:y + 16, x:x + 16][valid[n, y:y + 16, x:x + 16]]
                assert cell.numel() == 0 or cell.unique().numel() == 1
    assert 0 < weight[valid].mean() < 1  # some cells kept, some dropped


def test_keep_fraction_is_p():
    torch.manual_seed(0)
    label = torch.zeros(4, 1, 32 * 40, 32 * 40, dtype=torch.long)
    weight = build(keep_prob=0.25).sample(torch.zeros(4, 2, *label.shape[2:]), label)
    assert weight.mean().item() == pytest.approx(0.25, abs=0.02)  # 6400 cells
    everything = build(keep_prob=1.0).sample(torch.zeros(4, 2, *label.shape[2:]), label)
    assert (everything == 1).all()


@pytest.mark.parametrize('p', [0, 1.5, -1])
def test_bad_keep_prob(p):
    with pytest.raises(ValueError, match='keep_prob'):
        build(keep_prob=p)


def test_head_with_sampler_sums_loss_over_kept_pixels_only():
    head_cfg = dict(
        type='FCNSkipHead',
        in_channels=(8, ),
        in_index=(0, ),
        num_classes=3,
        loss_decode=dict(type='CrossEntropyLoss', reduction='sum'))
    plain = MODELS.build(head_cfg)
    sampled = MODELS.build(
        dict(head_cfg, sampler=dict(type='SpatialPixelSampler', keep_prob=0.5, cell_size=8)))
    assert type(sampled.sampler).__name__ == 'SpatialPixelSampler'
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    torch.manual_seed(0)
    logits = torch.randn(1, 3, 64, 64)
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=torch.randint(0, 3, (1, 64, 64)))
    full = plain.loss_by_feat(logits, [sample])['loss_ce']
    torch.manual_seed(1)
    part = sampled.loss_by_feat(logits, [sample])['loss_ce']
    torch.manual_seed(1)
    weight = sampled.sampler.sample(logits, sample.gt_sem_seg.data[None])
    per_pixel = torch.nn.functional.cross_entropy(
        logits, sample.gt_sem_seg.data, reduction='none')[0]
    assert part.item() == pytest.approx((per_pixel * weight[0]).sum().item(), rel=1e-5)
    assert 0 < part.item() < full.item()
