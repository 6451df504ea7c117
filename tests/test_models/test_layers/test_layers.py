"""Bilinear kernels, coord maps and skip fusion."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from fcn_plugin.models.layers import (BilinearUpsample, CoordMap, SkipFusion, bilinear_kernel,
                                      common_window)


@pytest.mark.parametrize('k', [1, 2, 3, 4, 7, 16, 32, 64])
def test_bilinear_kernel_matches_reference_formula(k):
    f = (k + 1) // 2
    c = f - 1 if k % 2 == 1 else f - 0.5
    expected = np.array([[(1 - abs(i - c) / f) * (1 - abs(j - c) / f) for j in range(k)]
                         for i in range(k)])
    np.testing.assert_allclose(bilinear_kernel(k).numpy(), expected, rtol=0, atol=1e-7)


def test_bilinear_kernel_values_k4():
    row = torch.tensor([0.25, 0.75, 0.75, 0.25])
    torch.testing.assert_close(bilinear_kernel(4), row[:, None] * row[None, :])


def test_fixed_upsample_is_class_diagonal_buffer():
    up = BilinearUpsample(3, stride=2)
    assert up.kernel_size == 4
    assert list(up.parameters()) == [] and 'weight' in up.state_dict()
    off_diagonal = up.weight.clone()
    off_diagonal[range(3), range(3)] = 0
    assert off_diagonal.abs().sum() == 0
    torch.testing.assert_close(up.weight[1, 1], bilinear_kernel(4))
    # x2 bilinear interpolation of a constant is constant away from the borders
    out = up(torch.ones(1, 3, 5, 5))
    assert out.shape == (1, 3, 12, 12)
    torch.testing.assert_close(out[..., 2:-2, 2:-2], torch.ones(1, 3, 8, 8))


def test_learnable_upsample_is_parameter():
    up = BilinearUpsample(2, stride=8, learnable=True)
    assert [p.shape for p in up.parameters()] == [torch.Size([2, 2, 16, 16])]


def test_coord_map_reproduces_caffe_offsets():
    # FCN-32s: conv1_1 pad 100, 5 ceil pools, fc6 7x7, x32 deconv k64 -> crop 19
    cmap = CoordMap.of(1).then_conv(3, 1, 100)
    for _ in range(5):
        cmap = cmap.then_conv(2, 2)
    fc7 = cmap.then_conv(7)
    assert fc7 == CoordMap.of(32, 12.5)
    assert -fc7.then_deconv(64, 32).offset == 19
    # the same through real modules
    layers = [nn.Conv2d(1, 1, 3, padding=100)
              ] + [nn.MaxPool2d(2, 2, ceil_mode=True)] * 5 + [nn.Conv2d(1, 1, 7)]
    assert CoordMap.of(1).through(layers) == fc7


def test_common_window_rejects_half_cell_misalignment():
    with pytest.raises(ValueError, match='misaligned'):
        common_window(CoordMap.of(16, -24), 10, CoordMap.of(16, 0), 10)


def test_skip_fusion_crops_fine_scores_and_starts_at_zero():
    fusion = SkipFusion(in_channels=8, num_classes=3)
    assert fusion.score.weight.abs().sum() == 0 and fusion.score.bias.abs().sum() == 0
    coarse = torch.randn(1, 3, 4, 4)
    fine = torch.randn(1, 8, 20, 20)
    # reference geometry at pool4: upsampled fc7 scores start 5 cells into pool4
    out, cmap = fusion(coarse, fine, CoordMap.of(32, 12.5), CoordMap.of(16, -91.5))
    assert out.shape == (1, 3, 10, 10) and cmap == CoordMap.of(16, -11.5)
    torch.testing.assert_close(out, fusion.upsample(coarse))  # zero skip scores
    with torch.no_grad():
        fusion.score.bias.fill_(1.0)
        fusion.score.weight.normal_()
    out, _ = fusion(coarse, fine, CoordMap.of(32, 12.5), CoordMap.of(16, -91.5))
    expected = fusion.upsample(coarse) + fusion.score(fine)[..., 5:15, 5:15]
    torch.testing.assert_close(out, expected)


def test_skip_fusion_centred_default_crops_upsampled_scores():
    fusion = SkipFusion(in_channels=4, num_classes=2, upsample_kernel_size=3)
    out, cmap = fusion(torch.randn(1, 2, 4, 4), torch.randn(1, 4, 8, 8))
    assert out.shape == (1, 2, 8, 8) and cmap == CoordMap.of(1, 0)
