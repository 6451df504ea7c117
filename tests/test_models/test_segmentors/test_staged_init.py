"""Stages: FCN-16s from FCN-32s and FCN-8s from FCN-16s copy every shared layer; only the new
stage's layers may be missing (checkpoint_fit='stage', what load_from in training uses)."""
import pytest
import torch
from mmengine.runner import load_checkpoint, save_checkpoint

from fcn_plugin.utils.checkpoint_fit import CheckpointFitError


def shared_and_new(previous, model):
    prev = previous.state_dict()
    shared = [k for k, v in model.state_dict().items() if k in prev and v.shape == prev[k].shape]
    new = [k for k in model.state_dict() if k not in prev]
    return shared, new


def stage(model):
    model.checkpoint_fit = 'stage'  # as CheckpointFitHook sets it for load_from
    return model


def test_fcn16s_from_fcn32s_then_fcn8s_from_fcn16s(tmp_path, build, randomize):
    fcn32s = randomize(build('32s'))
    save_checkpoint(fcn32s.state_dict(), str(tmp_path / 'fcn32s.pth'))
    fcn16s = stage(build('16s'))
    load_checkpoint(fcn16s, str(tmp_path / 'fcn32s.pth'), strict=False)  # as load_from does
    shared, new = shared_and_new(fcn32s, fcn16s)
    assert 'decode_head.conv_seg.weight' in shared and 'backbone.fc7.weight' in shared
    for key in shared:
        assert torch.equal(fcn16s.state_dict()[key], fcn32s.state_dict()[key]), key
    assert set(new) == {
        'decode_head.fusions.0.score.weight', 'decode_head.fusions.0.score.bias',
        'decode_head.fusions.0.upsample.weight'
    }
    assert fcn16s.decode_head.fusions[0].score.weight.abs().sum() == 0
    # the fixed final upsampling is x32 in FCN-32s and x16 here: same name, another shape
    assert fcn16s.decode_head.upsample.weight.shape[-1] == 32

    with torch.no_grad():
        fcn16s.decode_head.fusions[0].score.weight.normal_()
    save_checkpoint({'state_dict': fcn16s.state_dict()}, str(tmp_path / 'fcn16s.pth'))
    fcn8s = stage(build('8s'))
    load_checkpoint(fcn8s, str(tmp_path / 'fcn16s.pth'), strict=False)
    assert torch.equal(fcn8s.decode_head.fusions[0].score.weight,
                       fcn16s.decode_head.fusions[0].score.weight)
    assert torch.equal(fcn8s.backbone.conv1_1.weight, fcn32s.backbone.conv1_1.weight)
    assert fcn8s.decode_head.fusions[1].score.weight.abs().sum() == 0


def test_only_the_new_stage_may_be_missing(tmp_path, build, randomize):
    state = randomize(build('32s')).state_dict()
    save_checkpoint(state, str(tmp_path / 'fcn32s.pth'))
    with pytest.raises(CheckpointFitError, match="checkpoint_fit='strict'.*3 missing keys"):
        load_checkpoint(build('16s'), str(tmp_path / 'fcn32s.pth'))  # not a load_from: strict
    del state['backbone.conv3_2.bias']
    save_checkpoint(state, str(tmp_path / 'no_conv3_2.pth'))
    fcn16s = stage(build('16s'))
    before = fcn16s.backbone.conv1_1.weight.clone()
    with pytest.raises(CheckpointFitError, match=r'1 missing keys \(backbone.conv3_2.bias\)'):
        load_checkpoint(fcn16s, str(tmp_path / 'no_conv3_2.pth'))
    assert torch.equal(fcn16s.backbone.conv1_1.weight, before)  # nothing was copied
    state = build('16s', num_classes=2).state_dict()  # a binary FCN-16s, not the VOC one
    with pytest.raises(CheckpointFitError, match='size mismatch.*conv_seg.weight'):
        stage(build('8s')).load_state_dict(state, strict=False)
