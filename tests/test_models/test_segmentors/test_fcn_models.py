"""FCN-32s/16s/8s built from the configs, through MMSegmentation's EncoderDecoder."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmseg.registry import MODELS

import fcn_plugin  # noqa: F401

VARIANTS = ('32s', '16s', '8s', '8s-atonce')


@pytest.mark.parametrize('variant,offsets', [('32s', [19]), ('16s', [5, 27]), ('8s', [5, 9, 31]),
                                             ('8s-atonce', [5, 9, 31])])
def test_crop_offsets_derived_from_geometry(variant, offsets, build):
    model = build(variant)
    assert model.decode_head.crop_offsets(model.backbone.coord_maps) == offsets


@pytest.mark.parametrize('variant', VARIANTS)
@pytest.mark.parametrize('pad', [100, 124])
def test_crop_offsets_are_where_forward_crops(variant, pad, model_cfg, monkeypatch):
    """crop_offsets() == the starts forward() crops at (each fusion's, then the input crop),
    on the reference trunk and on one with other padding (other offsets)."""
    from fcn_plugin.models.layers import crop, skip_fusion
    cfg = model_cfg(variant)
    cfg.backbone.first_conv_padding = pad
    model = MODELS.build(cfg).eval()
    seen, common_window, input_crop_start = [], crop.common_window, crop.input_crop_start

    def recording_common_window(*args):
        start_a, start_b, length, cmap = common_window(*args)
        seen.append(start_a + start_b)
        return start_a, start_b, length, cmap

    def recording_input_crop_start(cmap):
        seen.append(input_crop_start(cmap))
        return seen[-1]

    monkeypatch.setattr(skip_fusion, 'common_window', recording_common_window)
    monkeypatch.setattr(crop, 'input_crop_start', recording_input_crop_start)
    with torch.no_grad():
        model._forward(torch.randn(1, 3, 37, 45))
    fusions, final = seen[:-1], seen[-1]
    assert len(fusions) == 2 * len(model.decode_head.fusions)
    assert fusions[0::2] == fusions[1::2]  # rows and columns alike
    expected = model.decode_head.crop_offsets(model.backbone.coord_maps)
    assert fusions[0::2] + [final] == expected
    assert (expected == {'32s': [19], '16s': [5, 27]}.get(variant, [5, 9, 31])) == (pad == 100)


@pytest.mark.parametrize('variant', ['32s', '16s', '8s'])
def test_logits_have_input_size_for_every_size(variant, build):
    model = build(variant)
    for h, w in [(1, 1), (1, 7), (2, 3), (5, 31), (17, 16), (32, 33), (63, 65), (97, 40)]:
        with torch.no_grad():
            logits = model._forward(torch.randn(1, 3, h, w))
        assert logits.shape == (1, 21, h, w), (h, w)


def test_score_layers_start_at_zero(build):
    model = build('8s')
    head = model.decode_head
    for conv in [head.conv_seg] + [f.score for f in head.fusions]:
        assert conv.weight.abs().sum() == 0 and conv.bias.abs().sum() == 0
    with torch.no_grad():
        assert model._forward(torch.randn(1, 3, 9, 9)).abs().sum() == 0


def test_atonce_scales_and_upsampling_layout(build):
    head = build('8s-atonce').decode_head
    assert [f.skip_scale for f in head.fusions] == [0.01, 0.0001]  # pool4, then pool3
    assert [f.upsample.kernel_size for f in head.fusions] == [4, 4]
    assert head.upsample.kernel_size == 16 and head.upsample.stride == 8
    assert build('32s').decode_head.upsample.kernel_size == 64


def learnable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize('variant,params,fixed', [('32s', 134_346_581, 1_806_336),
                                                  ('16s', 134_357_354, 458_640),
                                                  ('8s', 134_362_751, 127_008),
                                                  ('8s-atonce', 134_362_751, 127_008)])
def test_reference_parameter_counts(variant, params, fixed, repo_root):
    with torch.device('meta'):
        model = MODELS.build(
            Config.fromfile(osp.join(repo_root,
                                     f'configs/_base_/models/fcn{variant}_vgg16.py')).model)
    assert learnable(model) == params
    buffers = dict(model.named_buffers())
    assert sum(b.numel() for n, b in buffers.items() if 'upsample' in n) == fixed


def test_fixed_upsampling_not_trained_and_not_in_optimizer(build, preprocess):
    from mmengine.optim import build_optim_wrapper
    model = build('8s')
    with torch.no_grad():  # make every layer get gradients
        for conv in [model.decode_head.conv_seg] + [f.score for f in model.decode_head.fusions]:
            conv.weight.normal_(std=0.1)
    model.train()
    wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4),
            paramwise_cfg=dict(bias_lr_mult=2.0, bias_decay_mult=0.0)))
    optimized = {id(p) for g in wrapper.optimizer.param_groups for p in g['params']}
    ups = [model.decode_head.upsample] + [f.upsample for f in model.decode_head.fusions]
    assert not any(id(u.weight) in optimized for u in ups)
    before = [u.weight.clone() for u in ups]
    score_before = model.decode_head.conv_seg.weight.clone()
    data = preprocess(model, [(24, 20)], training=True)
    wrapper.update_params(sum(model.loss(**data).values()))
    assert all(torch.equal(b, u.weight) for b, u in zip(before, ups))
    assert not torch.equal(score_before, model.decode_head.conv_seg.weight)


def test_learnable_upsampling_is_trained(build, preprocess):
    """learnable_upsample=True: the upsampling kernels start bilinear (as the fixed ones) and
    are parameters that the optimizer holds and one training step changes."""
    from mmengine.optim import build_optim_wrapper
    fixed = build('16s').decode_head
    model = build('16s', learnable_upsample=True)
    head = model.decode_head
    ups = [head.upsample, head.fusions[0].upsample]
    names = {n for n, p in model.named_parameters()}
    assert {'decode_head.upsample.weight', 'decode_head.fusions.0.upsample.weight'} <= names
    assert not [n for n, _ in model.named_buffers() if 'upsample' in n]
    for u, f in zip(ups, [fixed.upsample, fixed.fusions[0].upsample]):
        assert torch.equal(u.weight.detach(), f.weight)
    with torch.no_grad():  # make every layer get gradients
        for conv in (head.conv_seg, head.fusions[0].score):
            conv.weight.normal_(std=0.1)
    model.train()
    wrapper = build_optim_wrapper(model, dict(optimizer=dict(type='SGD', lr=0.1)))
    optimized = {id(p) for g in wrapper.optimizer.param_groups for p in g['params']}
    assert all(id(u.weight) in optimized for u in ups)
    before = [u.weight.detach().clone() for u in ups]
    data = preprocess(model, [(24, 20)], training=True)
    wrapper.update_params(sum(model.loss(**data).values()))
    for b, u in zip(before, ups):
        assert not torch.equal(b, u.weight.detach())


def test_loss_and_predict_on_padded_batch_of_different_sizes(build, preprocess):
    model = build('8s')
    shapes = [(23, 31), (40, 17)]
    with torch.no_grad():
        model.decode_head.conv_seg.weight.normal_()
    model.train()
    data = preprocess(model, shapes, training=True)
    assert data['inputs'].shape[-2:] == (40, 31)
    losses = model.loss(**data)
    assert torch.isfinite(losses['decode.loss_ce']) and losses['decode.loss_ce'] > 0
    model.eval()
    data = preprocess(model, shapes)
    with torch.no_grad():
        results = model.predict(**data)
        padded_logits = model._forward(data['inputs'])
    for result, (h, w), logits in zip(results, shapes, padded_logits):
        assert result.pred_sem_seg.data.shape == (1, h, w)
        assert result.seg_logits.data.shape == (21, h, w)
        torch.testing.assert_close(result.seg_logits.data, logits[:, :h, :w])


def test_slide_inference_keeps_input_size(build, preprocess):
    model = build('8s')
    model.test_cfg = ConfigDict(mode='slide', crop_size=(24, 24), stride=(16, 16))
    with torch.no_grad():
        model.decode_head.conv_seg.weight.normal_()
        data = preprocess(model, [(45, 37)])
        result = model.predict(**data)[0]
    assert result.seg_logits.data.shape == (21, 45, 37)


def test_binary_segmentation(build, preprocess):
    model = build('16s', num_classes=2)
    model.train()
    losses = model.loss(**preprocess(model, [(19, 21)], training=True, num_classes=2))
    assert torch.isfinite(losses['decode.loss_ce'])
    model.eval()
    with torch.no_grad():
        result = model.predict(**preprocess(model, [(19, 21)], num_classes=2))[0]
    assert result.seg_logits.data.shape == (2, 19, 21)
    assert set(result.pred_sem_seg.data.unique().tolist()) <= {0, 1}


def test_head_config_errors_name_the_key(build):
    with pytest.raises(ValueError, match='skip_scales'):
        build('8s', skip_scales=(0.1, ))
    with pytest.raises(ValueError, match='upsample_kernel_sizes'):
        build('8s', upsample_kernel_sizes=(4, 4))


def test_binary_head_does_not_suggest_a_sigmoid(build):
    """num_classes=2 is FCN's binary segmentation (softmax over two classes): mmseg's warning
    that suggests out_channels=1 is not raised for this head."""
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        build('8s', num_classes=2)
    assert not [w for w in caught if 'For binary segmentation' in str(w.message)]
