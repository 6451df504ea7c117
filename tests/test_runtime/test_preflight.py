"""Config mistakes fail before the first iteration, with the config key in the message."""
import pytest
import torch.nn as nn

import fcn_plugin  # noqa: F401
from fcn_plugin.runtime.preflight import check_channels
from fcn_plugin.utils.config_vars import ConfigError

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture
def data(tmp_path, make_voc):
    make_voc(tmp_path / 'data', n_train=2, n_val=1)
    return tmp_path / 'data'


@pytest.fixture
def fails_before_training(build_runner):
    """``fails_before_training(cfg, match, test=False)``: training (or testing) ``cfg`` raises a
    ConfigError matching ``match`` before the first iteration; returns its message."""

    def run(cfg, match, test=False):
        runner = build_runner(cfg)
        with pytest.raises(ConfigError, match=match) as info:
            runner.test() if test else runner.train()
        if not test:
            assert runner.iter == 0
        return str(info.value)

    return run


def test_num_classes_not_matching_the_dataset(data, tmp_path, tiny_cfg, fails_before_training):
    cfg = tiny_cfg(data, tmp_path / 'work', model=dict(decode_head=dict(num_classes=5)))
    message = fails_before_training(cfg, r'model\.decode_head\.num_classes = 5')
    assert '(PascalVOCDataset in ValidatedDataset) has 21 classes' in message
    fails_before_training(cfg, r'model\.decode_head\.num_classes = 5', test=True)


def test_missing_pretrained_file(data, tmp_path, tiny_cfg, fails_before_training):
    missing = str(tmp_path / 'vgg16_caffe.pth')
    cfg = tiny_cfg(
        data,
        tmp_path / 'work',
        model=dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=missing))))
    message = fails_before_training(cfg, r'model\.backbone\.init_cfg\.checkpoint = ')
    assert missing in message and 'vgg2mmseg.py' in message


def test_missing_load_from(data, tmp_path, tiny_cfg, fails_before_training):
    cfg = tiny_cfg(data, tmp_path / 'work', load_from=str(tmp_path / 'fcn32s.pth'))
    fails_before_training(cfg, "load_from = .*fcn32s.pth'?: file not found", test=True)


def test_head_channels_not_matching_the_backbone(data, tmp_path, tiny_cfg, fails_before_training):
    # the tiny VGG gives pool3/pool4/fc7 16/32/16 channels; 4096 is VGG16's fc7
    cfg = tiny_cfg(
        data, tmp_path / 'work', model=dict(decode_head=dict(in_channels=(16, 32, 4096))))
    message = fails_before_training(cfg, r'model\.decode_head\.in_channels = \[16, 32, 4096\]')
    assert 'Set model.decode_head.in_channels = (16, 32, 16)' in message


def test_head_selecting_an_output_the_backbone_lacks(data, tmp_path, tiny_cfg,
                                                     fails_before_training):
    # FCN-8s head (in_index 0, 1, 2) on a backbone returning only pool4 and fc7
    cfg = tiny_cfg(data, tmp_path / 'work', model=dict(backbone=dict(out_indices=(3, 5))))
    fails_before_training(cfg, r'model\.decode_head\.in_index = \[0, 1, 2\] selects outputs')


def test_channels_found_by_a_forward_pass_without_out_channels():
    """A backbone without ``out_channels`` (mmseg's ResNet, say): one tiny forward pass."""

    class Backbone(nn.Module):

        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 8, 3, stride=2)
            self.b = nn.Conv2d(8, 12, 3, stride=2)

        def forward(self, x):
            x = self.a(x)
            return x, self.b(x)

    model = nn.Module()
    model.backbone = Backbone()
    model.decode_head = nn.Module()
    model.decode_head.in_index, model.decode_head.in_channels = [0, 1], [8, 12]
    check_channels(model)
    model.decode_head.in_channels = [8, 16]
    with pytest.raises(ConfigError, match=r'they have \[8, 12\] channels'):
        check_channels(model)
