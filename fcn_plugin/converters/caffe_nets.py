"""The reference Caffe nets, as :mod:`.caffe_proto` reads them, to fcn_plugin state dicts.

Supported: the fcn.berkeleyvision.org ``voc-fcn32s``/``voc-fcn16s``/``voc-fcn8s``/
``voc-fcn8s-atonce`` nets (their layer names are pytorch-fcn's, so :mod:`.torchfcn_keys` renames
them) and the ILSVRC ``VGG_ILSVRC_16_layers`` classifier (through :mod:`.vgg_keys`: fc6/fc7
reshaped into 7x7/1x1 convolutions, fc8 dropped). FCN-8s and FCN-8s at-once have the same
parameters and are told apart by the at-once net's ``scale_pool4``/``scale_pool3`` layers (fixed
0.01 and 1e-4, in the config). Anything else raises :class:`~.ConversionError` naming the file.
"""
import collections
import re
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch

from . import ConversionError
from .caffe_proto import CaffeNet
from .plain_fcn import VGG16_STAGES
from .torchfcn_keys import FINAL_UPSAMPLING, HEAD, TRUNK, torchfcn_to_mmseg
from .vgg_keys import DEPTH_BY_CONVS, vgg_to_backbone

VARIANTS = ('auto', '32s', '16s', '8s', '8s-atonce', 'vgg16')
VGG16_TRUNK = [
    f'conv{s}_{i}' for s, n in enumerate(VGG16_STAGES, start=1) for i in range(1, n + 1)
] + ['fc6', 'fc7']
# The head layers of each reference net (pytorch-fcn's names, the keys of torchfcn_keys.HEAD).
FCN_HEADS = {
    '32s': ('score_fr', 'upscore'),
    '16s': ('score_fr', 'upscore2', 'score_pool4', 'upscore16'),
    '8s': ('score_fr', 'upscore2', 'score_pool4', 'upscore_pool4', 'score_pool3', 'upscore8'),
}
DECONV_KERNELS = {'upscore': 64, 'upscore16': 32, 'upscore8': 16, 'upscore2': 4, 'upscore_pool4': 4}
# The at-once net's fixed Scale layers (FCNSkipHead's skip_scales in the fcn8s-atonce config).
ATONCE_SCALES = {'scale_pool4': 0.01, 'scale_pool3': 0.0001}
CLASSIFIER_ONLY = ('fc8', )  # ImageNet's classifier: dropped


def describe(layer) -> str:
    shapes = ', '.join('x'.join(map(str, b.shape)) or 'scalar' for b in layer.blobs)
    return f'  {layer.name:<14} {layer.type:<14} {shapes}'


def net_summary(net: CaffeNet, src: str) -> List[str]:
    """What was read: the net, its layers with parameters, the parameter-free ones by type."""
    with_blobs = [layer for layer in net.layers if layer.blobs]
    lines = [
        f'read {src}: net {net.name!r} ({net.format!r} encoding), {len(net.layers)} layers, '
        f'{len(with_blobs)} with parameters:'
    ] + [describe(layer) for layer in with_blobs]
    skipped = collections.Counter(layer.type or '?' for layer in net.layers if not layer.blobs)
    if skipped:
        lines.append('without parameters (skipped): ' +
                     ', '.join(f'{t} x{n}' for t, n in sorted(skipped.items())))
    return lines


def tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def layer_parameters(layer, src):
    """``(weight, bias or None)`` as tensors: biases 1-d (legacy blobs are 1x1x1xC), inner
    products 2-d (legacy 1x1xOxI), convolutions 4-d."""
    if len(layer.blobs) > 2:
        raise ConversionError(f'{src}: layer {layer.name!r} ({layer.type}) has '
                              f'{len(layer.blobs)} blobs; expected a weight and a bias')
    weight = layer.blobs[0]
    if layer.type == 'InnerProduct':
        if weight.ndim not in (2, 4) or (weight.ndim == 4 and weight.shape[:2] != (1, 1)):
            raise ConversionError(f'{src}: InnerProduct {layer.name!r} has a weight of shape '
                                  f'{weight.shape}; expected (out, in) or (1, 1, out, in)')
        weight = weight.reshape(weight.shape[-2:])
    elif weight.ndim != 4:
        raise ConversionError(f'{src}: {layer.type} {layer.name!r} has a weight of shape '
                              f'{weight.shape}; expected 4-d (out, in, kh, kw)')
    bias = None
    if len(layer.blobs) == 2:
        bias = layer.blobs[1]
        if bias.size != bias.shape[-1]:
            raise ConversionError(f'{src}: layer {layer.name!r} has a bias of shape {bias.shape}')
        bias = tensor(bias.reshape(-1))
    return tensor(weight), bias


def check_atonce_scale(layer, src) -> None:
    """The at-once Scale layers are parameter-free in the mmseg model (fixed factors in the
    config): their blob, when the caffemodel stores one, must hold exactly that factor."""
    expected = ATONCE_SCALES[layer.name]
    if not layer.blobs:
        return
    scale, bias = layer.blobs[0], layer.blobs[1:]
    if not np.allclose(scale, expected, rtol=1e-6, atol=0) or any(np.any(b) for b in bias):
        found = '[' + ', '.join(f'{v:.6g}' for v in np.unique(scale)[:4]) + ']'
        raise ConversionError(
            f'{src}: {layer.name!r} scales by {found}{" plus a bias" if bias else ""}; the '
            f'fcn8s-atonce config fixes it to {expected} (FCNSkipHead skip_scales), so this net '
            'cannot be converted as it is')


def fcn_variant_of(layers, src, variant, log) -> Tuple[str, List[str]]:
    """The variant of a reference FCN net and its parameter layers (pytorch-fcn's names)."""
    by_name = {layer.name: layer for layer in layers if layer.blobs}
    names = [layer.name for layer in layers]
    scales = [name for name in ATONCE_SCALES if name in names]
    finals = [name for name in FINAL_UPSAMPLING if name in by_name]
    if len(finals) != 1:
        raise ConversionError(f'{src}: an FCN net needs exactly one final upsampling layer of '
                              f'{list(FINAL_UPSAMPLING)}, found {finals or "none"}')
    detected = FINAL_UPSAMPLING[finals[0]]
    expected = VGG16_TRUNK + list(FCN_HEADS[detected])
    missing = [name for name in expected if name not in by_name]
    extra = [name for name in by_name if name not in expected and name not in ATONCE_SCALES]
    if missing or extra:
        raise ConversionError(f'{src}: not the reference FCN-{detected} (VGG16): ' + (
            f'missing layers {missing} (is the file truncated?)' if missing else '') +
                              ('; ' if missing and extra else '') +
                              (f'layers {extra} do not belong to it' if extra else ''))
    if scales:
        if detected != '8s':
            raise ConversionError(f'{src}: at-once scale layers {scales} in an FCN-{detected} '
                                  'net: only FCN-8s at-once is supported')
        if len(scales) != len(ATONCE_SCALES):
            raise ConversionError(f'{src}: only {scales} of the at-once scale layers '
                                  f'{list(ATONCE_SCALES)}: the fcn8s-atonce config scales both')
        for name in scales:
            check_atonce_scale(next(layer for layer in layers if layer.name == name), src)
        detected = '8s-atonce'
    if variant not in ('auto', detected):
        if not (variant == '8s-atonce' and detected == '8s'):
            raise ConversionError(f'{src}: --variant {variant} given, but the net is '
                                  f'FCN-{detected}')
        log('note: no scale_pool4/scale_pool3 layers; converting as FCN-8s at-once as asked '
            '(same parameters as FCN-8s; the config applies the fixed scales)')
        detected = variant
    return detected, expected


def fcn_state_dict(layers, src, variant='auto', log=print) -> Tuple[Dict[str, torch.Tensor], str]:
    """The fcn_plugin state dict and variant of a reference FCN net (``log``: a note when an
    FCN-8s is converted as at-once, as asked)."""
    by_name = {layer.name: layer for layer in layers if layer.blobs}
    detected, expected = fcn_variant_of(layers, src, variant, log)
    state, channels = {}, None
    for name in expected:
        layer = by_name[name]
        weight, bias = layer_parameters(layer, src)
        if weight.dim() == 2:  # fc6/fc7 stored as InnerProduct: convolutionalise
            in_channels = channels if name == 'fc6' else weight.shape[1]
            kernel = int(round((weight.shape[1] / in_channels)**0.5))
            if in_channels * kernel * kernel != weight.shape[1]:
                raise ConversionError(f'{src}: {name} has {weight.shape[1]} inputs, not '
                                      f'{in_channels} x k x k')
            weight = weight.reshape(weight.shape[0], in_channels, kernel, kernel)
        channels = weight.shape[0] if name.startswith('conv') else channels
        is_deconv = name in DECONV_KERNELS
        if (bias is None) != is_deconv:
            raise ConversionError(f'{src}: {name!r} has {len(layer.blobs)} blob(s); expected ' +
                                  ('only a weight (the fixed upsampling has no bias)'
                                   if is_deconv else 'a weight and a bias'))
        state[f'{name}.weight'] = weight
        if bias is not None:
            state[f'{name}.bias'] = bias
    num_classes = state['score_fr.weight'].shape[0]
    for name in FCN_HEADS[detected.replace('-atonce', '')]:
        weight = state[f'{name}.weight']
        k = DECONV_KERNELS.get(name)
        want = (num_classes, num_classes, k, k) if k else (num_classes, ) + weight.shape[1:]
        if tuple(weight.shape) != want:
            raise ConversionError(f'{src}: {name} weight has shape {tuple(weight.shape)}; the '
                                  f'reference FCN-{detected} has {want}')
    return torchfcn_to_mmseg(state)[0], detected


def vgg_state_dict(layers, src) -> Tuple[Dict[str, torch.Tensor], str]:
    """The backbone state dict of the ILSVRC VGG classifier (vgg2mmseg's conversion) and
    ``'vgg<depth>'``."""
    by_name = {layer.name: layer for layer in layers if layer.blobs}
    convs = sorted((tuple(map(int, re.findall(r'\d+', name))), name) for name in by_name
                   if name.startswith('conv'))
    torchvision, index, stage = {}, 0, 1
    for (s, _), name in convs:  # torchvision's features.N: conv, relu (, pool at stage ends)
        if s != stage:
            index, stage = index + 1, s
        weight, bias = layer_parameters(by_name[name], src)
        if bias is None:
            raise ConversionError(f'{src}: {name} has no bias blob')
        torchvision[f'features.{index}.weight'] = weight
        torchvision[f'features.{index}.bias'] = bias
        index += 2
    for name, index in (('fc6', 0), ('fc7', 3)):
        # InnerProduct in VGG_ILSVRC_16_layers; Convolution in a convolutionalised copy
        # (ilsvrc-nets/vgg16-fcn): flattened here, vgg_to_backbone reshapes them back.
        weight, bias = layer_parameters(by_name[name], src)
        if bias is None:
            raise ConversionError(f'{src}: {name} has no bias blob')
        torchvision[f'classifier.{index}.weight'] = weight.reshape(weight.shape[0], -1)
        torchvision[f'classifier.{index}.bias'] = bias
    try:
        state_dict = vgg_to_backbone(torchvision)
    except (KeyError, ValueError) as error:
        raise ConversionError(f'{src}: {error.args[0] if error.args else error}') from None
    return state_dict, f'vgg{DEPTH_BY_CONVS[len(convs)]}'


def net_state_dict(net: CaffeNet,
                   src: str,
                   variant: str = 'auto',
                   log: Callable[[str], None] = print) -> Tuple[Dict[str, torch.Tensor], str, str]:
    """``(state_dict, variant, what)`` of a reference FCN or the VGG16 classifier; ``variant``
    (one of :data:`VARIANTS`) other than ``'auto'``: fail unless the net is that one."""
    with_blobs = [layer for layer in net.layers if layer.blobs]
    repeated = sorted(
        {n
         for n, c in collections.Counter(layer.name for layer in with_blobs).items() if c > 1})
    if repeated:
        raise ConversionError(f'{src}: several layers with parameters are named {repeated}')
    names = {layer.name for layer in with_blobs}
    known = {name for name in names if TRUNK.match(f'{name}.') or name in HEAD}
    unknown = sorted(names - known - set(ATONCE_SCALES) - set(CLASSIFIER_ONLY))
    if unknown:
        raise ConversionError(f'{src}: layers with parameters that neither the reference FCNs '
                              f'nor VGG16 have: {unknown}')
    if names & set(HEAD):
        if names & set(CLASSIFIER_ONLY):
            raise ConversionError(f'{src}: both FCN score layers and the classifier\'s '
                                  f'{sorted(names & set(CLASSIFIER_ONLY))}: neither an FCN nor '
                                  'the VGG16 classifier')
        if variant == 'vgg16':
            raise ConversionError(f'{src}: --variant vgg16 given, but the net is an FCN')
        state_dict, variant = fcn_state_dict(net.layers, src, variant, log)
        return state_dict, variant, f'FCN-{variant}'
    if {'fc6', 'fc7'} <= names and any(name.startswith('conv') for name in names):
        if variant not in ('auto', 'vgg16'):
            raise ConversionError(f'{src}: --variant {variant} given, but the net is the VGG '
                                  'classifier (no score_fr/upscore layers)')
        state_dict, found = vgg_state_dict(net.layers, src)
        if variant == 'vgg16' and found != 'vgg16':
            raise ConversionError(f'{src}: --variant vgg16 given, but the net is {found}')
        dropped = [name for name in CLASSIFIER_ONLY if name in names]
        return state_dict, found, (f'{found.upper()} classifier (fc6/fc7 as 7x7/1x1 convolutions' +
                                   (f', {"/".join(dropped)} dropped' if dropped else '') + ')')
    raise ConversionError(
        f'{src}: neither an FCN (score_fr, upscore*) nor the VGG16 classifier (conv*, fc6, '
        f'fc7) (is the file truncated?); layers with parameters: {sorted(names) or "none"}')
