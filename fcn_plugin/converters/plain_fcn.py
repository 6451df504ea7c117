"""A plain-PyTorch FCN written straight from docs/fcn_reference.md (sections 1-2).

Not used by the plugin's models: it is the yardstick they are checked against. The tests use it
as the independent "original network" (no mmseg, no fcn_plugin layers, the published crop
offsets 19; 5, 27; 5, 9, 31 written down), and ``tools/benchmark.py --compare-plain`` times it
beside the mmseg model. Layer names are those of the public PyTorch port (pytorch-fcn), so its
state dict is a pytorch-fcn checkpoint. ``width``/``fc`` scale the channels for small tests.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .torchfcn_keys import mmseg_to_torchfcn

VGG16_STAGES = (2, 2, 3, 3, 3)
VARIANTS = ('32s', '16s', '8s', '8s-atonce')
# the reference's Crop offsets (skips coarse to fine, then the final crop), as published
PUBLISHED_OFFSETS = {'32s': (19, ), '16s': (5, 27), '8s': (5, 9, 31), '8s-atonce': (5, 9, 31)}


def upsample_filt(size):
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = np.ogrid[:size, :size]
    return (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)


def bilinear_weight(channels, size):
    weight = np.zeros((channels, channels, size, size), dtype=np.float64)
    weight[range(channels), range(channels), :, :] = upsample_filt(size)
    return torch.from_numpy(weight).float()


class PlainFCN(nn.Module):
    """FCN-32s/16s/8s/8s at-once on VGG16; ``variant`` is one of :data:`VARIANTS`."""

    def __init__(self,
                 variant='8s',
                 n_class=21,
                 width=64,
                 fc=4096,
                 first_pad=100,
                 fc6_kernel=7,
                 offsets=None):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f'variant must be one of {VARIANTS}, got {variant!r}')
        self.variant = variant
        # where the skip scores and the final scores are cropped (the published offsets for the
        # reference geometry; other paddings / fc6 kernels need theirs, see plain_fcn_like)
        self.offsets = tuple(offsets or PUBLISHED_OFFSETS[variant])
        c_in = 3
        for s, n in enumerate(VGG16_STAGES, start=1):
            c = width * min(2**(s - 1), 8)
            for i in range(1, n + 1):
                pad = first_pad if (s, i) == (1, 1) else 1
                setattr(self, f'conv{s}_{i}', nn.Conv2d(c_in, c, 3, padding=pad))
                c_in = c
        self.fc6 = nn.Conv2d(c_in, fc, fc6_kernel)
        self.fc7 = nn.Conv2d(fc, fc, 1)
        self.drop = nn.Dropout(0.5)
        self.score_fr = nn.Conv2d(fc, n_class, 1)
        if variant == '32s':
            self.upscore = nn.ConvTranspose2d(n_class, n_class, 64, stride=32, bias=False)
        else:
            self.score_pool4 = nn.Conv2d(width * 8, n_class, 1)
            self.upscore2 = nn.ConvTranspose2d(n_class, n_class, 4, stride=2, bias=False)
        if variant == '16s':
            self.upscore16 = nn.ConvTranspose2d(n_class, n_class, 32, stride=16, bias=False)
        if variant.startswith('8s'):
            self.score_pool3 = nn.Conv2d(width * 4, n_class, 1)
            self.upscore_pool4 = nn.ConvTranspose2d(n_class, n_class, 4, stride=2, bias=False)
            self.upscore8 = nn.ConvTranspose2d(n_class, n_class, 16, stride=8, bias=False)
        for m in self.modules():
            if isinstance(m, nn.ConvTranspose2d):
                m.weight.data.copy_(bilinear_weight(n_class, m.kernel_size[0]))
                m.weight.requires_grad_(False)

    def forward(self, x):
        h, w = x.shape[2:]
        pools = []
        for s, n in enumerate(VGG16_STAGES, start=1):
            for i in range(1, n + 1):
                x = F.relu(getattr(self, f'conv{s}_{i}')(x), inplace=True)
            x = F.max_pool2d(x, 2, 2, ceil_mode=True)
            pools.append(x)
        x = self.drop(F.relu(self.fc6(x), inplace=True))
        x = self.drop(F.relu(self.fc7(x), inplace=True))
        x = self.score_fr(x)
        o = self.offsets
        if self.variant == '32s':
            return self.upscore(x)[:, :, o[0]:o[0] + h, o[0]:o[0] + w]
        atonce = self.variant == '8s-atonce'
        up2 = self.upscore2(x)
        p4 = self.score_pool4(pools[3] * 0.01 if atonce else pools[3])
        x = _fuse(up2, p4, o[0])
        if self.variant == '16s':
            return self.upscore16(x)[:, :, o[1]:o[1] + h, o[1]:o[1] + w]
        up4 = self.upscore_pool4(x)
        p3 = self.score_pool3(pools[2] * 0.0001 if atonce else pools[2])
        x = _fuse(up4, p3, o[1])
        return self.upscore8(x)[:, :, o[2]:o[2] + h, o[2]:o[2] + w]


def _fuse(up, skip, offset):
    """``up + skip`` cropped at ``offset``, over their overlap (all of ``up`` in the reference)."""
    h = min(up.shape[2], skip.shape[2] - offset)
    w = min(up.shape[3], skip.shape[3] - offset)
    return up[:, :, :h, :w] + skip[:, :, offset:offset + h, offset:offset + w]


def fcn_variant(decode_head) -> str:
    """The :data:`VARIANTS` name of an :class:`FCNSkipHead` on the reference trunk."""
    variant = {0: '32s', 1: '16s', 2: '8s'}[len(decode_head.fusions)]
    if any(f.skip_scale != 1 for f in decode_head.fusions):
        variant += '-atonce'
    return variant


def plain_fcn_like(model) -> PlainFCN:
    """A :class:`PlainFCN` with the weights and geometry of an fcn_plugin VGG16 ``EncoderDecoder``
    (conv1_1's padding and fc6's kernel as configured; with other than the reference's, the crop
    offsets are the head's derived ones, e.g. 1, 1, 15 for the tiny demo config)."""
    variant = fcn_variant(model.decode_head)
    state = mmseg_to_torchfcn(model.state_dict(), variant)
    first_pad = model.backbone.conv1_1.padding[0]
    fc6_kernel = model.backbone.fc6.kernel_size[0]
    offsets = None
    if (first_pad, fc6_kernel) != (100, 7):
        offsets = model.decode_head.crop_offsets(model.backbone.coord_maps)
    plain = PlainFCN(
        variant,
        n_class=state['score_fr.weight'].shape[0],
        width=state['conv1_1.weight'].shape[0],
        fc=state['fc6.weight'].shape[0],
        first_pad=first_pad,
        fc6_kernel=fc6_kernel,
        offsets=offsets)
    plain.load_state_dict(state)
    plain.train(model.training)
    return plain.to(next(model.parameters()).device)
