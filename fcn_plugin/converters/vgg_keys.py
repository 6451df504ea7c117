"""Turn an ImageNet VGG state dict (torchvision's key layout) into a :class:`VGG` backbone's.

torchvision (and pytorch-fcn's ``vgg16_from_caffe.pth``, the Caffe weights in that layout) name
the trunk ``features.N`` (convs interleaved with ReLUs and pools) and the classifier
``classifier.0`` (fc6, 4096 x 25088), ``classifier.3`` (fc7, 4096 x 4096) and ``classifier.6``
(ImageNet's fc8, dropped). The backbone names them ``conv1_1`` ... ``conv5_3``, ``fc6``, ``fc7``,
with fc6/fc7 reshaped into 7x7 and 1x1 convolutions (the "convolutionalization" of the paper).
"""
from typing import Dict

import torch

from ..models.backbones.vgg import VGG

DEPTH_BY_CONVS = {sum(stages): depth for depth, stages in VGG.arch_settings.items()}


def vgg_to_backbone(state_dict: Dict[str, torch.Tensor],
                    fc6_kernel_size: int = 7) -> Dict[str, torch.Tensor]:
    """Rename/reshape; the result loads into ``VGG(depth=...)`` (no ``backbone.`` prefix)."""
    state_dict = state_dict.get('state_dict', state_dict)
    conv_ids = sorted({
        int(k.split('.')[1])
        for k in state_dict if k.startswith('features.') and k.endswith('.weight')
    })
    if not conv_ids or any(state_dict[f'features.{i}.weight'].dim() != 4 for i in conv_ids):
        raise KeyError('not a torchvision-layout VGG state dict without batch norm: expected '
                       "'features.N.weight' convolution weights (vgg*_bn is not supported)")
    if len(conv_ids) not in DEPTH_BY_CONVS:
        raise KeyError(f'{len(conv_ids)} convolutions: not VGG-11/13/16/19')
    depth = DEPTH_BY_CONVS[len(conv_ids)]
    names = [
        f'conv{s}_{i}' for s, n in enumerate(VGG.arch_settings[depth], start=1)
        for i in range(1, n + 1)
    ]
    converted = {}
    for name, index in zip(names, conv_ids):
        for param in ('weight', 'bias'):
            converted[f'{name}.{param}'] = state_dict[f'features.{index}.{param}']
    channels = converted[f'{names[-1]}.weight'].shape[0]
    for fc, index, kernel in (('fc6', 0, fc6_kernel_size), ('fc7', 3, 1)):
        key = f'classifier.{index}.weight'
        if key not in state_dict:
            raise KeyError(f'missing {key!r} ({fc}): the checkpoint has no classifier')
        weight = state_dict[key]
        in_channels = channels if fc == 'fc6' else weight.shape[1]
        if weight.shape[1] != in_channels * kernel * kernel:
            raise ValueError(f'{key} has shape {tuple(weight.shape)}; expected '
                             f'{in_channels * kernel * kernel} inputs for a {kernel}x{kernel} {fc}')
        converted[f'{fc}.weight'] = weight.reshape(weight.shape[0], in_channels, kernel, kernel)
        converted[f'{fc}.bias'] = state_dict[f'classifier.{index}.bias']
    return converted
