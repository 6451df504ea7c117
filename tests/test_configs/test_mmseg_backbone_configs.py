"""The skip head in children of mmseg's own configs (docs/models.md, "The head in your own mmseg
config"): ResNetV1c-50, ResNetV1c-18 and MobileNetV2 train and evaluate on toy data."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from fcn_plugin.datasets.toy_data import make_toy_voc

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# config -> the base's backbone type and the channels of its stride-8/16/32 maps
CONFIGS = {
    'fcn8s_r50-v1c_toyvoc.py': ('ResNetV1c', (512, 1024, 2048)),
    'fcn8s_r18-v1c_toyvoc.py': ('ResNetV1c', (128, 256, 512)),
    'fcn8s_mobilenet-v2_toyvoc.py': ('MobileNetV2', (32, 96, 320)),
}
SIZE = (45, 61)  # odd: padded to 64x64 in training (size_divisor=32), unpadded in validation


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toy') / 'toy')
    make_toy_voc(root, num_train=4, num_val=2, size=SIZE)
    return root


@pytest.mark.parametrize('name', list(CONFIGS))
def test_config_is_mmseg_config_with_the_skip_head(name):
    """The shipped file: mmseg's backbone as it is, non-dilated, the skip head's defaults."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    backbone, channels = CONFIGS[name]
    assert cfg.model.backbone.type == backbone
    assert set(cfg.model.backbone.dilations) == {1}
    assert cfg.model.pretrained is None and cfg.model.auxiliary_head is None
    assert cfg.model.data_preprocessor.size is None
    head = {k: v for k, v in cfg.model.decode_head.items() if k != '_scope_'}
    assert head == dict(type='FCNSkipHead', in_channels=channels, in_index=(1, 2, 3), num_classes=6)
    assert cfg.train_dataloader.dataset.type == 'ToyVOCDataset'
    # the toy schedule is long enough for BatchNorm's running statistics (docs/models.md)
    assert cfg.train_cfg.max_iters == cfg.param_scheduler[0].end == 200


@pytest.mark.parametrize('name', list(CONFIGS))
def test_trains_and_evaluates_on_toy_data(name, toy_root, tmp_path, build_runner, one_thread):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = toy_root
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_cfg.update(max_iters=3, val_interval=3)
    cfg.default_hooks.checkpoint.interval = 100
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'WARNING'
    if name.startswith('fcn8s_mobilenet'):
        # the setting docs/models.md gives for short runs reaches every (reverted) BN layer
        cfg.model.backbone.norm_cfg.momentum = 0.5
    runner = build_runner(cfg)
    model = runner.model
    # the maps the head takes: the configured channels at strides 8, 16 and 32
    _, channels = CONFIGS[name]
    with torch.no_grad():
        outs = model.backbone(torch.zeros(1, 3, 64, 64))
    assert [tuple(outs[i].shape[1:]) for i in (1, 2, 3)] == [(c, 64 // s, 64 // s)
                                                             for c, s in zip(channels, (8, 16, 32))]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    runner.train()

    after = model.state_dict()
    for key in ('backbone.conv1.conv.weight' if 'mobilenet' in name else 'backbone.stem.0.weight',
                'decode_head.conv_seg.weight'):
        assert not torch.equal(before[key], after[key]), key  # both parts trained
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns and not any(isinstance(m, torch.nn.SyncBatchNorm) for m in bns)
    assert all(m.running_var.ne(1).any() for m in bns)  # statistics were collected
    if name.startswith('fcn8s_mobilenet'):
        assert {m.momentum for m in bns} == {0.5}
    hub = runner.message_hub
    for key in ('aAcc', 'mIoU'):
        value = hub.get_scalar(f'val/{key}').current()
        assert math.isfinite(value) and 0 <= value <= 100, (key, value)

    # predictions of exactly the unpadded image's size
    data = next(iter(runner.val_dataloader))
    with torch.no_grad():
        sample = model.test_step(data)[0]
    assert sample.seg_logits.data.shape == (6, *SIZE)
    assert sample.pred_sem_seg.data.shape == (1, *SIZE)
