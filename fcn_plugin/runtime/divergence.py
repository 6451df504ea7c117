"""Stop training at the first NaN/inf loss or weight; what a NaN checkpoint is (never written,
never resumed: the checkpoint hook and the load policy ask :func:`checkpoint_nonfinite`)."""
import math
from typing import Iterable, List, Optional, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from .checkpoint_files import checkpoint_hook, checkpoint_step, read_last_checkpoint


class DivergenceError(FloatingPointError):
    """The training loss, the weights or the optimizer state became NaN or infinite."""


@HOOKS.register_module()
class DivergenceHook(Hook):
    """Raise :class:`DivergenceError` when training produces NaN or +-inf.

    After each iteration (priority ``ABOVE_NORMAL``: before the checkpoint hook saves it):
    every logged value whose key contains ``loss``, and, every ``check_interval`` iterations
    (0: never), every parameter after the update. A loss is computed before the update, so a
    weight that became inf shows in the loss only one iteration later; the weight check catches
    it in the update that made it, on every rank. The checkpoint hook refuses to write a
    non-finite checkpoint and the load policy to resume one (:func:`checkpoint_nonfinite`).

    The message (:func:`diverged`) gives the iteration, the offending values or tensors, the
    learning rate, the likely cause (with the reference's loss SUMMED over pixels the rate
    must be tiny: 1e-10 for FCN-32s, docs/fcn_reference.md section 3; 1e-4 diverges), the last
    checkpoint (all are verified finite) and the command that continues from it at a tenth of
    the rate (the load policy makes the new rate win over the saved one).

    Cost: a finite sum proves a tensor finite, so a check is one sum per tensor and one
    synchronisation (``isfinite().all()`` only for a tensor whose sum is not finite): 20-50 ms
    for VGG16's 136M parameters on one CPU core (``isfinite().all()`` alone: ~1.8 s); on a GPU,
    one reduction per tensor and one synchronisation per check.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, check_interval: int = 1) -> None:
        self.check_interval = check_interval
        self.active = True

    def before_run(self, runner) -> None:
        # one check per iteration, also when a config lists the hook in custom_hooks too
        self.active = next(h for h in runner.hooks if isinstance(h, DivergenceHook)) is self

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not self.active:
            return
        bad = {}
        for key, value in (outputs or {}).items():
            if 'loss' not in key:
                continue
            number = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
            if not math.isfinite(number):
                bad[key] = number
        if bad:
            raise diverged(runner, ', '.join(f'{k}={v}' for k, v in bad.items()), from_loss=True)
        if self.check_interval > 0 and self.every_n_train_iters(runner, self.check_interval):
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            params = list(model.named_parameters())
            names = nonfinite_tensors(params)
            if names:
                raise diverged(
                    runner, 'after its update, ' +
                    describe_nonfinite(names, len(params), 'parameter tensors'))


def diverged(runner, what: str, from_loss: bool = False) -> DivergenceError:
    """The error for a NaN/inf found at the current iteration (``what``: where)."""
    try:
        lr = '/'.join(f'{v:g}' for v in sorted(set(runner.optim_wrapper.get_lr()['lr'])))
    except Exception:  # an optimizer wrapper without get_lr()['lr']
        lr = 'unknown'
    return DivergenceError(
        f'Training diverged at iteration {runner.iter + 1}: {what} (learning rate(s) '
        f'{lr}, loss reduction {_loss_reduction(runner)!r}). Likely cause: the learning rate '
        'is too large for the loss reduction. The FCN reference SUMS the loss over pixels '
        "(reduction='sum', ~2.5e5 pixels per 500x500 image) and uses lr 1e-10 (FCN-32s), "
        "1e-12 (16s), 1e-14 (8s); lr 1e-4 with a summed loss diverges. With reduction='mean' "
        'use a rate about the pixel count larger. Other causes: a label outside '
        '0..num_classes-1/255 (run tools/check_dataset.py CONFIG), or fp16 overflow. ' +
        _advice(runner, from_loss))


def _advice(runner, from_loss: bool) -> str:
    config = getattr(runner.cfg, 'filename', None) or 'CONFIG'
    lr = configured_lr(runner.cfg)
    option = 'optim_wrapper.optimizer.lr=' + (f'{lr / 10:g}' if lr else 'LOWER_LR')
    last = read_last_checkpoint(runner.work_dir)  # every checkpoint written is finite
    if last:
        # a loss is computed before the update: this one came from the weights saved last
        step = checkpoint_step(last, getattr(checkpoint_hook(runner), 'filename_tmpl', None))
        caveat = (' Its weights gave this NaN/inf loss: should a resumed run stop here '
                  'again, move it out of the work dir (--resume then takes the checkpoint '
                  'before it) or start again.' if from_loss and step == runner.iter else '')
        return (f'The last checkpoint verified finite is {last} (this iteration was not '
                f'saved).{caveat} Continue from it at a lower learning rate (the one given '
                'replaces the saved one): python tools/train.py '
                f'{config} --resume --cfg-options {option}')
    return ('No checkpoint verified finite was written. Start again at a lower learning '
            f'rate: python tools/train.py {config} --cfg-options {option}')


def configured_lr(cfg) -> Optional[float]:
    """``optim_wrapper.optimizer.lr`` of a config (``None`` where there is no such number)."""
    try:
        lr = cfg['optim_wrapper']['optimizer']['lr']
    except (KeyError, TypeError):
        return None
    return float(lr) if isinstance(lr, (int, float)) and not isinstance(lr, bool) else None


def nonfinite_tensors(named: Iterable[Tuple[str, torch.Tensor]]) -> List[str]:
    """The names of the floating tensors holding a NaN or an inf. A finite sum proves a tensor
    finite (one NaN/inf makes the sum NaN/inf), so only tensors whose sum is not finite (or
    overflowed) are checked element-wise; one synchronisation for all the sums."""
    named = [(k, t.detach()) for k, t in named if t.is_floating_point() and t.numel()]
    if not named:
        return []
    sums = torch.stack([t.sum(dtype=torch.float32).to(named[0][1].device) for _, t in named])
    suspects = (~torch.isfinite(sums)).nonzero().flatten().tolist()
    return [named[i][0] for i in suspects if not bool(torch.isfinite(named[i][1]).all())]


def checkpoint_nonfinite(checkpoint: dict) -> Tuple[List[str], int]:
    """The non-finite tensors of a checkpoint's ``state_dict`` and ``optimizer`` state (named
    ``state_dict.<key>``, ``optimizer.state.<index>.<key>``) and the number of tensors."""
    named = [('state_dict.' + k, v) for k, v in _tensors(checkpoint.get('state_dict') or {})]
    named += [('optimizer.' + k, v) for k, v in _tensors(checkpoint.get('optimizer') or {})]
    return nonfinite_tensors(named), len(named)


def _tensors(tree, prefix: str = ''):
    if isinstance(tree, torch.Tensor):
        yield prefix, tree
    elif isinstance(tree, dict):
        for key, value in tree.items():
            yield from _tensors(value, f'{prefix}.{key}' if prefix else str(key))
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            yield from _tensors(value, f'{prefix}.{index}' if prefix else str(index))


def describe_nonfinite(names: List[str], total: int, what: str) -> str:
    shown = ', '.join(names[:4]) + (', ...' if len(names) > 4 else '')
    return f'{len(names)} of {total} {what} hold NaN/inf ({shown})'


def _loss_reduction(runner) -> str:
    """The decode head's loss reduction from the config, as far as it is known."""
    try:
        loss = runner.cfg.model.decode_head.loss_decode
        losses = loss if isinstance(loss, (list, tuple)) else [loss]
        return '/'.join(str(item.get('reduction', 'mean')) for item in losses)
    except (AttributeError, KeyError, TypeError):
        return 'unknown'
