"""The default CPU inference path (image cores + NNPACK) gives the plain network's outputs."""
import os.path as osp

import pytest
import torch
import torch.nn as nn

from fcn_plugin.converters.plain_fcn import VARIANTS, PlainFCN
from fcn_plugin.converters.torchfcn_keys import torchfcn_to_mmseg
from fcn_plugin.models import VGG
from fcn_plugin.models.backbones import vgg_core_forward
from fcn_plugin.models.layers import core_window, fast_conv
from fcn_plugin.models.layers.bilinear_upsample import BilinearUpsample

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

SIZES = [(1, 1), (1, 7), (2, 3), (5, 5), (16, 16), (17, 33), (31, 32), (32, 32), (33, 31), (64, 48),
         (97, 131), (100, 1)]


def random_vgg(**kwargs):
    torch.manual_seed(0)
    model = VGG(base_channels=4, fc_channels=16, out_indices=(0, 1, 2, 3, 4, 5), **kwargs)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity='relu')
            nn.init.normal_(m.bias, std=0.1)
    return model.eval()


def max_rel_diff(outs, refs):
    assert [o.shape for o in outs] == [r.shape for r in refs]
    return max(
        float((o - r).abs().max() / r.abs().max().clamp_min(1e-12)) for o, r in zip(outs, refs))


def both_paths(model, x):
    with torch.no_grad():
        model.fast_inference = False
        ref = model(x)
        model.fast_inference = True
        return model(x), ref


def test_reference_trunk_runs_on_cores_through_pool4():
    shapes = tuple(core_window.LayerShape.of(m) for m in trunk_layers(random_vgg()))
    steps = core_window.plan_axis(shapes, 500)
    # conv1_1 sees the image in 502 of its 698 cells; pool4 in 38 of 44
    assert (steps[0].size, steps[0].core) == (698, (98, 600))
    assert (steps[13].size, steps[13].core.length) == (44, 38)
    for size in (1, 2, 97, 500, 1000):
        assert core_window.windowable_depth(shapes, size, size) == 14  # conv1_1 .. pool4
    # plain VGG padding leaves no margin: nothing runs on cores
    plain = tuple(s._replace(padding=1) if i == 0 else s for i, s in enumerate(shapes))
    assert core_window.windowable_depth(plain, 256, 256) == 0


def trunk_layers(model):
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]


@pytest.mark.parametrize('size', SIZES)
def test_same_outputs_as_plain_forward_at_every_size(size):
    model = random_vgg()
    x = torch.randn(2, 3, *size) * 50
    outs, refs = both_paths(model, x)
    assert max_rel_diff(outs, refs) < 1e-4
    assert outs.coord_maps == refs.coord_maps and outs.input_size == refs.input_size


@pytest.mark.parametrize('size', [(1, 1), (33, 31), (97, 131)])
def test_cores_alone_are_exact_to_rounding(size, monkeypatch):
    """Without NNPACK the only difference left is summation order: a window off by one cell or
    a wrong constant would show as O(1) errors."""
    monkeypatch.setattr(fast_conv, 'nnpack_available', lambda: False)
    outs, refs = both_paths(random_vgg(), torch.randn(1, 3, *size) * 50)
    assert max_rel_diff(outs, refs) < 1e-5


def test_small_padding_and_other_depths():
    for kwargs, sizes in ((dict(first_conv_padding=16,
                                fc6_kernel_size=3), [(40, 40),
                                                     (35, 61)]), (dict(depth=11), [(37, 53)]),
                          (dict(first_conv_padding=1), [(224, 229)])):  # no margin: plain path
        model = random_vgg(**kwargs)
        for size in sizes:
            outs, refs = both_paths(model, torch.randn(1, 3, *size) * 50)
            assert max_rel_diff(outs, refs) < 1e-4, kwargs


def test_zero_image_cache_is_bounded_and_follows_the_weights():
    model = random_vgg()
    for h in range(20, 20 + 16 * 3):  # more size classes than the cache holds
        with torch.no_grad():
            model(torch.randn(1, 3, h, 9))
    assert 0 < len(model._zero_image_maps.entries) <= model._zero_image_maps.maxsize
    x = torch.randn(1, 3, 45, 29) * 50
    both_paths(model, x)
    with torch.no_grad():
        model.conv2_1.bias.add_(0.5)  # in place, as an optimizer step or load_state_dict does
    outs, refs = both_paths(model, x)
    assert max_rel_diff(outs, refs) < 1e-4


def test_training_autocast_and_switch_take_the_plain_path(monkeypatch):
    calls = []
    real = vgg_core_forward.core_forward
    monkeypatch.setattr('fcn_plugin.models.backbones.vgg.core_forward',
                        lambda *a: calls.append(1) or real(*a))
    model = random_vgg()
    x = torch.randn(1, 3, 20, 20)
    model.train()(x)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        model.eval()(x)
    model.fast_inference = False
    model(x)
    assert calls == []
    model.fast_inference = True
    model(x)
    assert calls == [1]


def test_eval_forward_keeps_gradients():
    model = random_vgg()
    x = torch.randn(1, 3, 24, 24, requires_grad=True)
    model(x)[-1].sum().backward()
    grad = x.grad.clone()
    x.grad = None
    model.fast_inference = False
    model(x)[-1].sum().backward()
    torch.testing.assert_close(x.grad, grad, rtol=1e-3, atol=1e-3 * grad.abs().max().item())


@pytest.mark.parametrize('variant', VARIANTS)
def test_full_networks_match_plain_module(variant, assert_matches_plain):
    """The default predict path of every variant against the plain module with the same
    weights: logits within 1e-4 of the logit range and the same argmax, 1x1 to non-square."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    plain = PlainFCN(variant, n_class=5, width=4, fc=16).eval()
    with torch.no_grad():
        for name, p in plain.named_parameters():
            if 'upscore' not in name:
                p.copy_(torch.randn(p.shape) * (0.2 if p.dim() > 1 else 0.05))
    cfg = Config.fromfile(f'{ROOT}/configs/_base_/models/fcn{variant}_vgg16.py').model
    cfg.backbone.update(base_channels=4, fc_channels=16)
    cfg.decode_head.update(
        num_classes=5,
        in_channels=tuple({
            256: 16,
            512: 32,
            4096: 16
        }[c] for c in cfg.decode_head.in_channels))
    model = MODELS.build(cfg).eval()
    model.load_state_dict(torchfcn_to_mmseg(plain.state_dict())[0])
    assert_matches_plain(model, plain, ((1, 1), (23, 41), (64, 64)))


def test_diagonal_upsampling_runs_grouped_in_inference_only(monkeypatch):
    up = BilinearUpsample(5, 8, 16)
    x = torch.randn(1, 5, 6, 7)
    full = torch.nn.functional.conv_transpose2d(x, up.weight, stride=8)
    groups = []
    real = torch.nn.functional.conv_transpose2d
    monkeypatch.setattr(torch.nn.functional, 'conv_transpose2d',
                        lambda *a, **k: groups.append(k.get('groups', 1)) or real(*a, **k))
    with torch.no_grad():
        torch.testing.assert_close(up(x), full)
    up(x)  # training arithmetic stays the reference's
    assert groups == [5, 1]
    with torch.no_grad():
        up.weight[0, 1] += 0.5  # a class feeding another: the full convolution is needed
        assert up._diagonal() is None
        torch.testing.assert_close(up(x), real(x, up.weight, stride=8))
    assert groups[-1] == 1
