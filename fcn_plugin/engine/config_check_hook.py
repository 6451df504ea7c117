"""Catch config mistakes before the first iteration, with the config key in the message."""
import os.path as osp
from typing import Iterator, List, Optional, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.runner import BaseLoop
from mmseg.registry import HOOKS

from ..utils.config_vars import ConfigError  # noqa: F401  (raised here, exported by engine)


def _is_local(path: str) -> bool:
    return '://' not in path


def pretrained_files(cfg: dict, prefix: str = 'model') -> Iterator[Tuple[str, str]]:
    """``(key, path)`` for every ``init_cfg=dict(type='Pretrained', checkpoint=...)`` and
    ``pretrained=...`` in a model config, e.g. ``('model.backbone.init_cfg.checkpoint', p)``."""
    if isinstance(cfg, dict):
        if cfg.get('type') == 'Pretrained' and isinstance(cfg.get('checkpoint'), str):
            yield f'{prefix}.checkpoint', cfg['checkpoint']
        for key, value in cfg.items():
            if key == 'pretrained' and isinstance(value, str):
                yield f'{prefix}.pretrained', value
            elif isinstance(value, (dict, list, tuple)):
                yield from pretrained_files(value, f'{prefix}.{key}')
    elif isinstance(cfg, (list, tuple)):
        for i, value in enumerate(cfg):
            yield from pretrained_files(value, f'{prefix}[{i}]')


def check_files(model_cfg: Optional[dict], load_from: Optional[str]) -> None:
    """Missing pretrained weights or ``load_from`` fail now, not after the model is built."""
    for key, path in pretrained_files(model_cfg or {}):
        if _is_local(path) and not osp.isfile(osp.expanduser(path)):
            raise ConfigError(
                f'{key} = {path!r}: file not found. Convert the weights first (VGG16: '
                'python tools/model_converters/vgg2mmseg.py SRC DST; an earlier FCN stage: its '
                'checkpoint), fix the path, or set the init_cfg to None to train from scratch.')
    if load_from and _is_local(load_from) and not osp.isfile(osp.expanduser(load_from)):
        raise ConfigError(f'load_from = {load_from!r}: file not found.')


def _backbone_channels(model) -> Optional[List[int]]:
    """Channels of each backbone output: its ``out_channels``, else one tiny forward pass."""
    backbone = getattr(model, 'backbone', None)
    if backbone is None:
        return None
    channels = getattr(backbone, 'out_channels', None)
    if isinstance(channels, (list, tuple)) and all(isinstance(c, int) for c in channels):
        return list(channels)
    try:
        param = next(backbone.parameters())
        was_training = backbone.training
        backbone.eval()
        with torch.no_grad():
            outs = backbone(torch.zeros(1, 3, 64, 64, device=param.device, dtype=param.dtype))
        backbone.train(was_training)
    except Exception:  # an unusual backbone: leave the check to the forward pass
        return None
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return [o.shape[1] for o in outs]


def check_channels(model) -> None:
    """The heads' ``in_channels`` must be the backbone outputs they select (``in_index``)."""
    channels = _backbone_channels(model)
    if channels is None:
        return
    heads = [('model.decode_head', getattr(model, 'decode_head', None))]
    aux = getattr(model, 'auxiliary_head', None)
    if isinstance(aux, torch.nn.ModuleList):
        heads += [(f'model.auxiliary_head[{i}]', h) for i, h in enumerate(aux)]
    else:
        heads.append(('model.auxiliary_head', aux))
    for key, head in heads:
        if head is None or not hasattr(head, 'in_channels') or not hasattr(head, 'in_index'):
            continue
        in_index = head.in_index if isinstance(head.in_index, (list, tuple)) else [head.in_index]
        in_channels = head.in_channels if isinstance(head.in_channels,
                                                     (list, tuple)) else [head.in_channels]
        if any(not -len(channels) <= i < len(channels) for i in in_index):
            raise ConfigError(
                f'{key}.in_index = {list(in_index)} selects outputs the backbone does not '
                f'return: it returns {len(channels)} (channels {channels}; model.backbone.'
                'out_indices chooses them).')
        expected = [channels[i] for i in in_index]
        if list(in_channels) != expected:
            raise ConfigError(
                f'{key}.in_channels = {list(in_channels)} does not match the backbone outputs '
                f'it selects ({key}.in_index = {list(in_index)}): they have {expected} '
                f'channels (all outputs: {channels}). Set {key}.in_channels = {tuple(expected)}, '
                'or change model.backbone (base_channels, fc_channels, out_indices).')


def check_num_classes(model, datasets: List[Tuple[str, object]]) -> None:
    """``num_classes`` of each head must be the number of classes of every dataset used."""
    heads = [('model.decode_head', getattr(model, 'decode_head', None))]
    for key, head in heads:
        num_classes = getattr(head, 'num_classes', None)
        if num_classes is None:
            continue
        for name, dataset in datasets:
            classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
            if classes is None:
                continue
            if len(classes) != num_classes:
                kind = type(dataset).__name__
                inner = getattr(dataset, 'dataset', None)  # a dataset wrapper
                kind = f'{type(inner).__name__} in {kind}' if inner is not None else kind
                raise ConfigError(
                    f'{key}.num_classes = {num_classes}, but {name}.dataset ({kind}) has '
                    f'{len(classes)} classes {tuple(classes)}. '
                    f'Set {key}.num_classes = {len(classes)}, or the dataset\'s '
                    'metainfo=dict(classes=...).')


def _built_datasets(runner) -> List[Tuple[str, object]]:
    """The datasets of the loops already built (building one here would load its data)."""
    found = []
    for name, attr in (('train_dataloader', '_train_loop'), ('val_dataloader', '_val_loop'),
                       ('test_dataloader', '_test_loop')):
        loop = getattr(runner, attr, None)
        if isinstance(loop, BaseLoop) and getattr(loop, 'dataloader', None) is not None:
            found.append((name, loop.dataloader.dataset))
    return found


@HOOKS.register_module()
class ConfigCheckHook(Hook):
    """At ``before_run`` (model and data loaders built, nothing loaded or trained yet), check:

    - when training, every pretrained file (``init_cfg=dict(type='Pretrained',
      checkpoint=...)``, ``pretrained=``) exists, so a typo fails now and not after the data
      was set up (testing loads a trained checkpoint instead and does not need them); and
      ``load_from``, when set, exists;
    - each head's ``in_channels`` equals the channels of the backbone outputs its ``in_index``
      selects (``backbone.out_channels``, else one 64x64 forward pass);
    - ``decode_head.num_classes`` equals the number of classes of each built dataset;
    - the config's top-level ``num_classes``/``classes``/``palette``/``data_root``/``max_iters``
      reached every field derived from them (:mod:`fcn_plugin.utils.config_vars`): a child
      config's ``num_classes = 2`` that left the head at the base's value, or a
      ``train_cfg.max_iters`` that left the schedule ending at the old one, names both keys.
      ``runner_type='FCNRunner'`` (and ``tools/train.py``/``tools/test.py``) resolve them
      before the runner is built, so this only fires for runners built otherwise.

    Each failure raises :class:`ConfigError` naming the config key and the value that fits.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        if runner.cfg:
            from ..utils.config_vars import check_config_vars
            check_config_vars(runner.cfg)
        training = isinstance(getattr(runner, '_train_loop', None), BaseLoop)
        model_cfg = runner.cfg.get('model') if training and runner.cfg else None
        check_files(model_cfg, getattr(runner, '_load_from', None))
        model = runner.model
        model = getattr(model, 'module', model)  # DDP wrapper
        check_channels(model)
        check_num_classes(model, _built_datasets(runner))
