"""The skip head is generic: FCN-8s fusion on a non-dilated ResNet-50 from an mmseg config."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

import fcn_plugin  # noqa: F401
from fcn_plugin.models import CoordMap


@pytest.fixture(scope='module')
def resnet_fcn8s(repo_root):
    cfg = Config.fromfile(osp.join(repo_root, 'configs/fcn8s_r50_voc12aug.py'))
    assert cfg.model.decode_head.type == 'FCNSkipHead'
    cfg.model.backbone.norm_cfg = dict(type='BN', requires_grad=True)  # no SyncBN on one CPU
    cfg.model.auxiliary_head.norm_cfg = dict(type='BN', requires_grad=True)
    cfg.model.pretrained = None
    cfg.model.data_preprocessor.size = (64, 64)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_offsets_on_centred_resnet_maps(resnet_fcn8s):
    head = resnet_fcn8s.decode_head
    assert head.in_coord_maps == (CoordMap.of(8), CoordMap.of(16), CoordMap.of(32))
    assert head.crop_offsets() == [1, 1, 7]


def test_resnet_fcn8s_loss_and_full_size_logits(resnet_fcn8s, preprocess):
    model = resnet_fcn8s.eval()
    with torch.no_grad():
        model.decode_head.conv_seg.weight.normal_()
        for h, w in [(64, 64), (33, 47), (1, 1), (70, 31)]:
            x = torch.randn(1, 3, h, w)
            logits = model.predict(x)[0].seg_logits.data
            assert logits.shape == (21, h, w)
            # tensor mode does not know the input size: aligned at pixel 0, at least as large
            unsized = model._forward(x)
            assert unsized.shape[-2] >= h and unsized.shape[-1] >= w
            torch.testing.assert_close(unsized[0, :, :h, :w], logits)
    model.train()
    losses = model.loss(**preprocess(model, [(48, 40), (32, 56)], training=True))
    assert torch.isfinite(losses['decode.loss_ce'])
    assert 'aux.loss_ce' in losses  # mmseg's auxiliary head left as it was
