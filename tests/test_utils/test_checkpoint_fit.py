"""init_model and init_cfg Pretrained refuse a checkpoint that does not fit, naming the file and
the keys; checkpoint_fit='off' is the way out for deliberate partial loads."""
import pytest
import torch
from mmengine.runner import save_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from fcn_plugin.utils.checkpoint_fit import CheckpointFitError
from fcn_plugin.utils.checkpoint_safety import install_safe_checkpoint_loaders


@pytest.fixture
def tool_loaders(monkeypatch):
    """mmengine's loaders as the tools install them (they name the file), for this test only."""
    monkeypatch.setattr(CheckpointLoader, '_schemes', dict(CheckpointLoader._schemes))
    install_safe_checkpoint_loaders()


@pytest.mark.usefixtures('tool_loaders')
def test_init_model_needs_every_weight(tmp_path, tiny_cfg, build_runner):
    from mmseg.apis import init_model
    cfg = tiny_cfg(tmp_path / 'data', tmp_path / 'work')
    cfg.model.type = 'AutocastEncoderDecoder'
    good = init_model(cfg, None, device='cpu').state_dict()
    save_checkpoint({'state_dict': good, 'meta': {}}, str(tmp_path / 'good.pth'))
    init_model(cfg, str(tmp_path / 'good.pth'), device='cpu')

    unrelated = tmp_path / 'resnet.pth'
    save_checkpoint({
        'state_dict': {
            'conv1.weight': torch.zeros(64, 3, 7, 7)
        },
        'meta': {}
    }, str(unrelated))
    with pytest.raises(
            CheckpointFitError,
            match=f'checkpoint {unrelated} does not fit the '
            'AutocastEncoderDecoder.*shares no key'):
        init_model(cfg, str(unrelated), device='cpu')

    good['decode_head.fusions.1.score.weight'] = torch.zeros(3, 16, 1, 1)
    del good['backbone.fc7.bias']
    good['aux.weight'] = torch.zeros(1)
    save_checkpoint({'state_dict': good, 'meta': {}}, str(tmp_path / 'bad.pth'))
    with pytest.raises(CheckpointFitError) as info:
        init_model(cfg, str(tmp_path / 'bad.pth'), device='cpu')
    message = str(info.value)
    assert '1 missing keys (backbone.fc7.bias)' in message
    assert '1 unexpected keys (aux.weight)' in message
    assert 'decode_head.fusions.1.score.weight: checkpoint [3, 16, 1, 1], model [21, 16, 1, 1]' \
        in message and "checkpoint_fit='stage' or 'off'" in message
    assert 'classes' not in message  # the class count agrees: no word on it

    # another class count (a child config whose top-level num_classes reached nothing)
    good = init_model(cfg, None, device='cpu').state_dict()
    good['decode_head.conv_seg.weight'] = torch.zeros(
        3, *good['decode_head.conv_seg.weight'].shape[1:])
    save_checkpoint({'state_dict': good, 'meta': {}}, str(tmp_path / 'classes.pth'))
    with pytest.raises(CheckpointFitError, match='has 3 classes, the model 21: .*num_classes=3'):
        init_model(cfg, str(tmp_path / 'classes.pth'), device='cpu')

    cfg.model.checkpoint_fit = 'off'  # mmengine's warnings only
    init_model(cfg, str(tmp_path / 'bad.pth'), device='cpu')


def test_backbone_pretrained_needs_the_backbone(tmp_path, model_cfg, build):
    from mmseg.registry import MODELS
    whole = tmp_path / 'fcn8s.pth'
    save_checkpoint({'state_dict': build('8s').state_dict()}, str(whole))
    cfg = model_cfg('8s')
    cfg.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(whole))
    with pytest.raises(CheckpointFitError, match="shares no key.*prefix='backbone.'"):
        MODELS.build(cfg).init_weights()
    cfg.backbone.init_cfg['prefix'] = 'backbone.'
    MODELS.build(cfg).init_weights()

    state = build('8s').backbone.state_dict()
    state['fc6.weight'] = state['fc6.weight'][:, :, :3, :3]
    save_checkpoint(state, str(tmp_path / 'vgg.pth'))
    cfg.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(tmp_path / 'vgg.pth'))
    with pytest.raises(CheckpointFitError, match=r"'backbone'.*size mismatches \(fc6.weight"):
        MODELS.build(cfg).init_weights()
