"""FCNSkipHead with only in_channels/in_index/num_classes on mmseg's own backbones: a training
step and logits of exactly the input's size at odd sizes, no kernel settings needed."""
import warnings

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

BACKBONES = {
    'resnet': (dict(
        type='ResNetV1c',
        depth=18,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 1, 1),
        strides=(1, 2, 2, 2)), (128, 256, 512), (1, 2, 3)),
    'mit': (dict(
        type='MixVisionTransformer',
        in_channels=3,
        embed_dims=16,
        num_stages=4,
        num_layers=(1, 1, 1, 1),
        num_heads=(1, 2, 4, 8),
        patch_sizes=(7, 3, 3, 3),
        sr_ratios=(8, 4, 2, 1),
        out_indices=(0, 1, 2, 3)), (32, 64, 128), (1, 2, 3)),
    'swin': (dict(
        type='SwinTransformer',
        embed_dims=16,
        depths=(1, 1, 1, 1),
        num_heads=(1, 2, 4, 8),
        window_size=7,
        out_indices=(0, 1, 2, 3)), (32, 64, 128), (1, 2, 3)),
    'mobilenetv2': (dict(type='MobileNetV2', widen_factor=0.5,
                         out_indices=(2, 4, 6)), (16, 48, 160), (0, 1, 2)),
}


def build(backbone, in_channels, in_index, **head):
    torch.manual_seed(0)
    model = MODELS.build(
        dict(
            type='EncoderDecoder',
            data_preprocessor=dict(type='PadSegDataPreProcessor', mean=[0, 0, 0], std=[1, 1, 1]),
            backbone=backbone,
            decode_head=dict(
                type='FCNSkipHead',
                in_channels=in_channels,
                in_index=in_index,
                num_classes=3,
                **head),
            test_cfg=ConfigDict(mode='whole')))
    with torch.no_grad():
        for name, p in model.decode_head.named_parameters():
            if 'score' in name or 'conv_seg' in name:
                p.normal_(std=0.1)
    return model


def batch(*sizes):
    g = torch.Generator().manual_seed(0)
    data = dict(inputs=[], data_samples=[])
    for h, w in sizes:
        data['inputs'].append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 3, (1, h, w), generator=g))
        data['data_samples'].append(sample)
    return data


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_defaults_work_on_mmseg_backbones(name):
    model = build(*BACKBONES[name])
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)  # centred maps: aligned without rounding
        model.train()
        optim = torch.optim.SGD(model.parameters(), lr=1e-3)
        losses = model.train_step(batch((97, 131), (64, 80)), _Wrapper(optim))
        assert torch.isfinite(losses['loss'])
        model.eval()
        with torch.no_grad():
            for size in ((97, 131), (65, 33)):
                data = model.data_preprocessor(batch(size), False)
                out = model.predict(data['inputs'], data['data_samples'])[0]
                assert out.seg_logits.data.shape == (3, *size)
                assert out.pred_sem_seg.data.shape == (1, *size)


def test_swin_with_its_declared_grids_uses_the_paper_kernels():
    """Swin's 4x4 patch embedding puts stride-s maps at x = s * i + (s - 1) / 2 ... declared,
    the even kernels align them exactly; undeclared (assumed centred) the odd ones are used."""
    backbone, channels, index = BACKBONES['swin']
    declared = build(
        backbone, channels, index, in_coord_maps=((8, 3.5), (16, 7.5), (32, 15.5))).decode_head
    plan = declared._plan(declared.in_coord_maps)
    assert plan.kernels == [None, None, None]  # 4, 4, 16
    assumed = build(backbone, channels, index).decode_head
    assert assumed._plan(assumed.in_coord_maps).kernels == [3, 3, 15]
    assert assumed.crop_offsets() == [1, 1, 7]


def test_undeclared_fractional_offset_is_rounded_with_a_warning():
    backbone, channels, index = BACKBONES['resnet']
    head = build(backbone, channels, index, in_coord_maps=((8, 0), (16, 0), (32, 4))).decode_head
    with pytest.warns(UserWarning, match='nearest cell'):
        head._plan(head.in_coord_maps)


def test_explicit_kernels_are_kept_and_checked():
    backbone, channels, index = BACKBONES['resnet']
    head = build(backbone, channels, index, upsample_kernel_sizes=(4, 4, 16)).decode_head
    with pytest.raises(ValueError, match='misaligned'):
        head.crop_offsets()


class _Wrapper:
    """The bits of mmengine's OptimWrapper that BaseModel.train_step uses."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    def optim_context(self, model):
        import contextlib
        return contextlib.nullcontext()

    def update_params(self, loss):
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
