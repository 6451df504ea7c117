"""Stages: FCN-16s from FCN-32s and FCN-8s from FCN-16s copy every shared layer."""
import torch
from mmengine.runner import load_checkpoint, save_checkpoint


def shared_and_new(previous, model):
    prev = previous.state_dict()
    shared = [k for k, v in model.state_dict().items() if k in prev and v.shape == prev[k].shape]
    new = [k for k in model.state_dict() if k not in prev]
    return shared, new


def test_fcn16s_from_fcn32s_then_fcn8s_from_fcn16s(tmp_path, build, randomize):
    fcn32s = randomize(build('32s'))
    save_checkpoint(fcn32s.state_dict(), str(tmp_path / 'fcn32s.pth'))
    fcn16s = build('16s')
    load_checkpoint(fcn16s, str(tmp_path / 'fcn32s.pth'), strict=False)  # as load_from does
    shared, new = shared_and_new(fcn32s, fcn16s)
    assert 'decode_head.conv_seg.weight' in shared and 'backbone.fc7.weight' in shared
    for key in shared:
        assert torch.equal(fcn16s.state_dict()[key], fcn32s.state_dict()[key]), key
    assert set(new) == {'decode_head.fusions.0.score.weight', 'decode_head.fusions.0.score.bias',
                        'decode_head.fusions.0.upsample.weight'}
    assert fcn16s.decode_head.fusions[0].score.weight.abs().sum() == 0

    with torch.no_grad():
        fcn16s.decode_head.fusions[0].score.weight.normal_()
    save_checkpoint({'state_dict': fcn16s.state_dict()}, str(tmp_path / 'fcn16s.pth'))
    fcn8s = build('8s')
    load_checkpoint(fcn8s, str(tmp_path / 'fcn16s.pth'), strict=False)
    assert torch.equal(fcn8s.decode_head.fusions[0].score.weight,
                       fcn16s.decode_head.fusions[0].score.weight)
    assert torch.equal(fcn8s.backbone.conv1_1.weight, fcn32s.backbone.conv1_1.weight)
    assert fcn8s.decode_head.fusions[1].score.weight.abs().sum() == 0
