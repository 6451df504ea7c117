"""A checkpoint that does not fit the model is an error, not a warning.

mmengine loads every checkpoint (``Runner.load_checkpoint``/``resume``, ``load_from``,
``init_cfg=dict(type='Pretrained')``, ``mmseg.apis.init_model``) with
``mmengine.runner.checkpoint.load_state_dict(module, state_dict, strict=False)``: keys that do not
match and tensors of the wrong shape are only logged, and the layers keep their initialisation.
:func:`attach_checkpoint_fit` registers a ``load_state_dict`` pre-hook on the module loaded: it
sees the whole state dict before anything is copied and raises one :class:`CheckpointFitError`
naming the file, the missing, unexpected and mismatched keys (the first few, and counts).

The rule is the module's ``checkpoint_fit`` attribute:

- ``'strict'`` (the segmentor's default: test, infer, ``init_model``, ``--resume``): every model
  key present with its shape, no other key;
- ``'stage'`` (``load_from`` in training, set by ``CheckpointFitHook``): the staged recipe
  (FCN-32s -> 16s -> 8s) loads partially by design: the only keys allowed to be missing are the
  layers the new stage adds (a skip fusion of the head absent from the checkpoint as a whole, and
  the final upsampling, whose factor changes with the stage); unexpected keys are a warning;
- ``'backbone'`` (the VGG backbone loaded on its own, ``init_cfg`` Pretrained): every backbone
  key present with its shape; unexpected keys are a warning;
- ``'off'``: mmengine's and torch's behaviour (``model.checkpoint_fit = 'off'`` before your own
  ``load_state_dict(sd, strict=False)``, or ``model=dict(checkpoint_fit='off')`` in a config).

In every rule a shape mismatch, and a checkpoint sharing no key with the module, are errors.
"""
import weakref
from typing import Dict, List, Mapping, Optional

import torch
from mmengine.logging import print_log

MODES = ('strict', 'stage', 'backbone', 'off')
SHOW = 5  # keys named per kind of mismatch

_source = {'tensor': None, 'filename': None}


class CheckpointFitError(RuntimeError):
    """A checkpoint's keys or shapes do not fit the module it is loaded into."""


def remember_source(checkpoint, filename: str, overwrite: bool = True) -> None:
    """Record that ``checkpoint`` (just loaded) came from ``filename``, so that a fit error
    raised when its state dict is loaded can name the file. Holds no reference to the data."""
    if isinstance(checkpoint, Mapping):
        state = checkpoint.get('state_dict', checkpoint)
        if isinstance(state, Mapping):
            if not overwrite and source_of(state) != 'the checkpoint':
                return
            for value in state.values():
                if isinstance(value, torch.Tensor):
                    _source.update(tensor=weakref.ref(value), filename=str(filename))
                    return


def source_of(state_dict: Mapping) -> str:
    """``'checkpoint FILE'`` if ``state_dict`` holds the tensors :func:`remember_source` saw,
    else ``'the checkpoint'``."""
    ref = _source['tensor']
    tensor = ref() if ref is not None else None
    if tensor is not None and any(v is tensor for v in state_dict.values()):
        return f"checkpoint {_source['filename']}"
    return 'the checkpoint'


def _shape(value) -> Optional[tuple]:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None


def _names(keys: List[str]) -> str:
    more = f', ... ({len(keys) - SHOW} more)' if len(keys) > SHOW else ''
    return ', '.join(keys[:SHOW]) + more


def stage_new_keys(module: torch.nn.Module, state_dict: Mapping) -> List[str]:
    """Keys of the layers a new stage adds to ``module``'s head: every skip fusion of which the
    checkpoint holds no key (FCN-16s's score_pool4 from FCN-32s, FCN-8s's score_pool3 from
    FCN-16s) and, if there is one, the final upsampling (x32 -> x16 -> x8)."""
    head = getattr(module, 'decode_head', None)
    fusions = getattr(head, 'fusions', None)
    if not isinstance(fusions, torch.nn.ModuleList):
        return []
    new = []
    for j in range(len(fusions)):
        prefix = f'decode_head.fusions.{j}.'
        if not any(k.startswith(prefix) for k in state_dict):
            new += [prefix + k for k in fusions[j].state_dict()]
    if new and isinstance(getattr(head, 'upsample', None), torch.nn.Module):
        new += ['decode_head.upsample.' + k for k in head.upsample.state_dict()]
    return new


def fit_problems(module: torch.nn.Module, state_dict: Mapping, mode: str) -> Dict[str, list]:
    """``{'missing', 'unexpected', 'mismatched', 'allowed'}`` for loading ``state_dict`` into
    ``module`` under ``mode``; ``mismatched`` holds ``(key, checkpoint shape, model shape)``."""
    own = {k: _shape(v) for k, v in module.state_dict().items()}
    missing = [k for k in own if k not in state_dict and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [(k, _shape(v), own[k]) for k, v in state_dict.items()
                  if k in own and _shape(v) != own[k]]
    allowed = set(stage_new_keys(module, state_dict)) if mode == 'stage' else set()
    return dict(
        missing=[k for k in missing if k not in allowed],
        unexpected=unexpected,
        mismatched=[m for m in mismatched if m[0] not in allowed],
        allowed=sorted(allowed & (set(missing) | {m[0]
                                                  for m in mismatched})),
        shared=len(own) - len(missing))


HINTS = {
    'strict':
    "Use the checkpoint written for this config: testing, inference and --resume "
    "need every weight. To load only part of it on purpose, set the model's "
    "checkpoint_fit='stage' or 'off' (config key model.checkpoint_fit).",
    'stage':
    'load_from initialises a stage from the previous one (FCN-32s -> 16s -> 8s): only '
    "the new stage's score layers may be missing. Check that load_from names the "
    "previous stage's final checkpoint for the same classes and backbone.",
    'backbone':
    "init_cfg Pretrained needs a checkpoint of this backbone (tools/model_converters/"
    "vgg2mmseg.py writes one); for a whole-model checkpoint add prefix='backbone.'.",
}


def _classes_hint(found: Dict[str, list]) -> str:
    """What to set when the checkpoint's head has another class count than the model's."""
    for key, ckpt, model in found['mismatched']:
        if key == 'decode_head.conv_seg.weight' and ckpt and model and ckpt[0] != model[0]:
            return (f'The checkpoint has {ckpt[0]} classes, the model {model[0]}: a config '
                    'setting num_classes or classes as top-level variables does not reach '
                    f'the model (set model = dict(decode_head=dict(num_classes={ckpt[0]})) and '
                    "the datasets' metainfo classes). ")
    return ''


def check_fit(module: torch.nn.Module, state_dict: Mapping, mode: str) -> None:
    """Raise :class:`CheckpointFitError` if ``state_dict`` does not fit ``module`` under
    ``mode`` (see the module docstring); warn about unexpected keys where they are allowed."""
    if mode == 'off':
        return
    if mode not in MODES:
        raise ValueError(f'checkpoint_fit={mode!r} is not one of {MODES}')
    found = fit_problems(module, state_dict, mode)
    relaxed_unexpected = mode != 'strict' and found['shared'] > 0
    where = f'{source_of(state_dict)} does not fit the {type(module).__name__}'
    if not found['shared'] and len(state_dict):
        parts = [
            f'it shares no key with the model (checkpoint keys: {_names(list(state_dict))}; '
            f'model keys: {_names(list(module.state_dict()))})'
        ]
    else:
        parts = []
        if found['missing']:
            parts.append(f"{len(found['missing'])} missing keys ({_names(found['missing'])})")
        if found['unexpected'] and not relaxed_unexpected:
            parts.append(f"{len(found['unexpected'])} unexpected keys "
                         f"({_names(found['unexpected'])})")
        if found['mismatched']:
            shapes = [
                f'{k}: checkpoint {list(a) if a else a}, model {list(b)}'
                for k, a, b in found['mismatched']
            ]
            parts.append(f"{len(shapes)} size mismatches ({_names(shapes)})")
    if parts:
        raise CheckpointFitError(f"{where} (checkpoint_fit='{mode}'): " + '; '.join(parts) +
                                 f'. Nothing was loaded. {_classes_hint(found)}{HINTS[mode]}')
    if found['unexpected']:
        print_log(
            f"{where}: ignoring {len(found['unexpected'])} keys the model does not have "
            f"({_names(found['unexpected'])})",
            logger='current',
            level=30)
    if found['allowed']:
        print_log(
            f"{source_of(state_dict)}: the new stage's layers start from their "
            f"initialisation: {_names(found['allowed'])}",
            logger='current')


def _fit_pre_hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                  error_msgs) -> None:
    """``load_state_dict`` pre-hook: checks the module when it is the one being loaded."""
    if prefix == '':
        check_fit(module, state_dict, getattr(module, 'checkpoint_fit', 'strict'))


def attach_checkpoint_fit(module: torch.nn.Module, mode: Optional[str] = None) -> None:
    """Check every state dict loaded into ``module`` (as the top module) under
    ``module.checkpoint_fit`` (``mode`` if given, else the module's own, else ``'strict'``).
    Idempotent."""
    if mode is not None or not hasattr(module, 'checkpoint_fit'):
        if (mode or 'strict') not in MODES:
            raise ValueError(f'checkpoint_fit={mode!r} is not one of {MODES} (config key '
                             'model.checkpoint_fit)')
        module.checkpoint_fit = mode or 'strict'
    if not getattr(module, '_checkpoint_fit_attached', False):
        module.register_load_state_dict_pre_hook(_fit_pre_hook)
        module._checkpoint_fit_attached = True
