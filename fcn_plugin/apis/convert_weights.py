"""Convert the reference's published weights to fcn_plugin checkpoints (what the tools in
``tools/model_converters/`` do), callable from Python::

    from fcn_plugin.apis import convert_caffe, convert_torchfcn, convert_vgg
    convert_vgg('vgg16_from_caffe.pth', 'pretrain/vgg16_caffe.pth')        # a backbone
    convert_torchfcn('fcn8s_from_caffe.pth', 'checkpoints/fcn8s.pth')       # a whole FCN
    result = convert_caffe('fcn8s-heavy-pascal.caffemodel', 'checkpoints/fcn8s.pth', log=print)
    result.variant  # '8s'

A whole-FCN checkpoint loads with ``mmseg.apis.init_model`` for the matching config
(configs/fcn32s_vgg16_voc.py, fcn16s, fcn8s, fcn8s-atonce) and gives the original network's
logits; its ``meta`` names the source, the variant and the classes (VOC's for 21 classes, else
``'0'``, ``'1'``, ...). A backbone checkpoint (fc6/fc7 reshaped into 7x7/1x1 convolutions,
ImageNet's fc8 dropped) is for the backbone's ``init_cfg=dict(type='Pretrained', ...)``.
Checkpoints are read weights-only (:func:`~fcn_plugin.utils.io.load_weights_only`: a missing,
unsafe or damaged file raises ``FileNotFoundError``, ``UnsafeCheckpointError`` or
``CorruptCheckpointError``) and written atomically. A file that is not the expected network
raises :class:`~fcn_plugin.converters.ConversionError` (Caffe files that cannot be parsed:
:class:`~fcn_plugin.converters.caffe_proto.CaffeModelError`), naming it; nothing is written.
"""
import os.path as osp
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch
from mmseg.datasets import PascalVOCDataset

from ..converters import ConversionError
from ..converters.caffe_nets import net_state_dict, net_summary
from ..converters.caffe_proto import read_caffemodel
from ..converters.torchfcn_keys import torchfcn_to_mmseg
from ..converters.vgg_keys import DEPTH_BY_CONVS, vgg_to_backbone
from ..utils.io import atomic_torch_save, load_weights_only


@dataclass
class Conversion:
    """A written checkpoint: ``variant`` (``'8s'``, ``'8s-atonce'``, ``'vgg16'`` ...),
    ``num_tensors`` in its state dict and the ``messages`` the conversion reported (what was
    read, notes; the last one says what was written)."""
    src: str
    dst: str
    variant: str
    num_tensors: int
    messages: List[str] = field(default_factory=list)


class _Messages(list):
    """A list of messages that also passes each one to ``log`` as it comes."""

    def __init__(self, log: Optional[Callable[[str], None]]):
        super().__init__()
        self.log = log

    def __call__(self, message: str) -> None:
        self.append(message)
        if self.log is not None:
            self.log(message)


def _fcn_checkpoint(state_dict: Dict[str, torch.Tensor], src: str, variant: str) -> dict:
    """A whole-FCN checkpoint: VOC's classes with 21 of them, else '0', '1', ..."""
    num_classes = state_dict['decode_head.conv_seg.weight'].shape[0]
    meta = {'converted_from': src, 'fcn_variant': variant}
    if num_classes == len(PascalVOCDataset.METAINFO['classes']):
        meta['dataset_meta'] = {k: list(v) for k, v in PascalVOCDataset.METAINFO.items()}
    else:
        meta['dataset_meta'] = {'classes': [str(i) for i in range(num_classes)]}
    return {'state_dict': state_dict, 'meta': meta}


def _backbone_checkpoint(state_dict: Dict[str, torch.Tensor], src: str) -> dict:
    return {'state_dict': state_dict, 'meta': {'converted_from': src}}


def _write(checkpoint: dict, src: str, dst: str, variant: str, what: str,
           messages: _Messages) -> Conversion:
    atomic_torch_save(checkpoint, dst)
    count = len(checkpoint['state_dict'])
    messages(f'{what}wrote {count} tensors to {dst}')
    return Conversion(src, dst, variant, count, list(messages))


def convert_torchfcn(src: str, dst: str, log: Optional[Callable[[str], None]] = None) -> Conversion:
    """A pytorch-fcn (torchfcn) FCN32s/16s/8s/8sAtOnce checkpoint -- a plain state dict (the
    released ``fcn*_from_caffe.pth``) or a trainer checkpoint (``model_state_dict``) -- to a
    whole-FCN checkpoint. At-once has FCN-8s's layers: its variant reads ``'8s'``, pick the
    fcn8s-atonce config yourself. ``log`` gets each message as it comes (e.g. ``print``)."""
    messages = _Messages(log)
    checkpoint = load_weights_only(src, 'pytorch-fcn checkpoint')
    for key in ('model_state_dict', 'state_dict'):
        if isinstance(checkpoint, dict) and key in checkpoint:
            checkpoint = checkpoint[key]
    try:
        state_dict, variant = torchfcn_to_mmseg(checkpoint)
    except KeyError as error:
        raise ConversionError(f'{src}: {error.args[0] if error.args else error}') from None
    return _write(
        _fcn_checkpoint(state_dict, src, variant), src, dst, variant, f'FCN-{variant}: ', messages)


def convert_vgg(src: str, dst: str, log: Optional[Callable[[str], None]] = None) -> Conversion:
    """An ImageNet VGG state dict in torchvision's key layout (``features.N``/``classifier.N``:
    torchvision's ``vgg16-397923af.pth``, pytorch-fcn's ``vgg16_from_caffe.pth``) to a VGG
    backbone checkpoint; the variant is ``'vgg<depth>'``."""
    messages = _Messages(log)
    try:
        state_dict = vgg_to_backbone(load_weights_only(src, 'VGG checkpoint'))
    except (KeyError, ValueError) as error:
        raise ConversionError(f'{src}: {error.args[0] if error.args else error}') from None
    convs = sum(k.startswith('conv') and k.endswith('.weight') for k in state_dict)
    return _write(
        _backbone_checkpoint(state_dict, src), src, dst, f'vgg{DEPTH_BY_CONVS[convs]}', '',
        messages)


def convert_caffe(src: str,
                  dst: str,
                  variant: str = 'auto',
                  log: Optional[Callable[[str], None]] = None) -> Conversion:
    """A reference Caffe ``.caffemodel`` -- the fcn.berkeleyvision.org ``voc-fcn32s``/``16s``/
    ``8s``/``8s-atonce`` weights, or ``VGG_ILSVRC_16_layers`` -- to a whole-FCN or a backbone
    checkpoint (:mod:`fcn_plugin.converters.caffe_nets`). ``variant`` (``'auto'``, ``'32s'``,
    ``'16s'``, ``'8s'``, ``'8s-atonce'``, ``'vgg16'``): fail unless the net is that one (an
    FCN-8s converts as ``'8s-atonce'`` when asked: same parameters). ``log`` gets the layers
    read before the net is checked, so they are shown even when it is refused."""
    messages = _Messages(log)
    if not osp.isfile(src):
        raise ConversionError(f'caffemodel not found: {src}')
    net = read_caffemodel(src)
    for line in net_summary(net, src):
        messages(line)
    state_dict, variant, what = net_state_dict(net, src, variant, messages)
    checkpoint = (
        _backbone_checkpoint(state_dict, src) if variant.startswith('vgg') else _fcn_checkpoint(
            state_dict, src, variant))
    return _write(checkpoint, src, dst, variant, f'{what}: ', messages)
