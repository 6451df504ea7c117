"""Key mapping between pytorch-fcn (torchfcn) checkpoints and fcn_plugin's mmseg models.

pytorch-fcn names layers as the reference (docs/fcn_reference.md section 5); fcn_plugin keeps the
trunk's names under ``backbone.`` and names the head's layers by role:

=====================  =====================================================
pytorch-fcn            fcn_plugin (EncoderDecoder)
=====================  =====================================================
conv1_1 ... fc7        backbone.conv1_1 ... backbone.fc7
score_fr               decode_head.conv_seg
upscore2, score_pool4  decode_head.fusions.0.upsample, decode_head.fusions.0.score
upscore_pool4,         decode_head.fusions.1.upsample, decode_head.fusions.1.score
score_pool3
upscore / upscore16 /  decode_head.upsample (x32 / x16 / x8)
upscore8
=====================  =====================================================
"""
import re
from typing import Dict, Tuple

import torch

TRUNK = re.compile(r'^(conv\d_\d|fc6|fc7)\.')
HEAD = {
    'score_fr': 'decode_head.conv_seg',
    'upscore2': 'decode_head.fusions.0.upsample',
    'score_pool4': 'decode_head.fusions.0.score',
    'upscore_pool4': 'decode_head.fusions.1.upsample',
    'score_pool3': 'decode_head.fusions.1.score',
    'upscore': 'decode_head.upsample',
    'upscore16': 'decode_head.upsample',
    'upscore8': 'decode_head.upsample',
}
FINAL_UPSAMPLING = {'upscore': '32s', 'upscore16': '16s', 'upscore8': '8s'}


def torchfcn_variant(state_dict: Dict[str, torch.Tensor]) -> str:
    """'32s', '16s' or '8s' (at-once has 8s's layers) from the final upsampling's name."""
    found = [v for k, v in FINAL_UPSAMPLING.items() if f'{k}.weight' in state_dict]
    if len(found) != 1:
        raise KeyError('not a pytorch-fcn FCN32s/16s/8s state dict: expected exactly one of '
                       f'{[k + ".weight" for k in FINAL_UPSAMPLING]}, found {found or "none"}')
    return found[0]


def torchfcn_to_mmseg(state_dict: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], str]:
    """Rename a pytorch-fcn state dict for fcn_plugin; returns ``(state_dict, variant)``."""
    state_dict = {
        k[len('module.'):] if k.startswith('module.') else k: v
        for k, v in state_dict.items()
    }
    variant = torchfcn_variant(state_dict)
    converted, unknown = {}, []
    for key, value in state_dict.items():
        layer, _, param = key.partition('.')
        if TRUNK.match(key):
            converted[f'backbone.{key}'] = value
        elif layer in HEAD:
            converted[f'{HEAD[layer]}.{param}'] = value
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(f'unexpected keys for a pytorch-fcn {variant} model: {unknown}')
    return converted, variant


def mmseg_to_torchfcn(state_dict: Dict[str, torch.Tensor], variant: str) -> Dict[str, torch.Tensor]:
    """The inverse of :func:`torchfcn_to_mmseg` for an FCN-``variant`` model's state dict."""
    final = {v: k for k, v in FINAL_UPSAMPLING.items()}[variant.replace('-atonce', '')]
    inverse = {v: k for k, v in HEAD.items() if k not in FINAL_UPSAMPLING}
    inverse['decode_head.upsample'] = final
    converted = {}
    for key, value in state_dict.items():
        if key.startswith('backbone.'):
            converted[key[len('backbone.'):]] = value
            continue
        module, _, param = key.rpartition('.')
        if module in inverse:
            converted[f'{inverse[module]}.{param}'] = value
    return converted
