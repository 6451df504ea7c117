"""Stop training at the first NaN/inf loss or weight; never write or resume a NaN checkpoint."""
import math
from typing import Iterable, List, Optional, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import find_latest_checkpoint
from mmseg.registry import HOOKS

from .lr_override_hook import configured_lr


class DivergenceError(FloatingPointError):
    """The training loss, the weights or the optimizer state became NaN or infinite."""


@HOOKS.register_module()
class DivergenceHook(Hook):
    """Raise :class:`DivergenceError` when training produces NaN or +-inf.

    - After each iteration (priority ``ABOVE_NORMAL``: before ``CheckpointHook``): every logged
      value whose key contains ``loss``, and, every ``check_interval`` iterations (0: never),
      every parameter after the update. A loss is computed before the update, so a weight that
      became inf shows in the loss only one iteration later; the weight check catches it in
      the update that made it, on every rank.
    - Before any checkpoint is written (``before_save_checkpoint``): every floating tensor of
      its ``state_dict`` and ``optimizer`` state (momentum buffers...). A non-finite one stops
      the run and nothing is written (``AtomicCheckpointHook`` writes through a temporary file,
      ``last_checkpoint`` keeps naming the previous checkpoint).
    - On ``--resume``: the same check of the checkpoint loaded.

    The message gives the iteration, the offending values or tensors, the learning rate, the
    likely cause (with the reference's loss SUMMED over pixels the rate must be tiny: 1e-10 for
    FCN-32s, docs/fcn_reference.md section 3; 1e-4 diverges), the last checkpoint verified
    finite (saved past this check, or resumed from) and the command that continues from it at
    a tenth of the rate (:class:`~fcn_plugin.engine.LrOverrideHook` makes the new rate win).

    Cost: a finite sum proves a tensor finite, so a check is one sum per tensor and one
    synchronisation (``isfinite().all()`` only for a tensor whose sum is not finite): 20-50 ms
    for VGG16's 136M parameters on one CPU core (``isfinite().all()`` alone: ~1.8 s); on a GPU,
    one reduction per tensor and one synchronisation per check.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, check_interval: int = 1) -> None:
        self.check_interval = check_interval
        self.last_finite: Optional[str] = None
        self.last_finite_iter: Optional[int] = None  # the iterations trained into it

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        bad = {}
        for key, value in (outputs or {}).items():
            if 'loss' not in key:
                continue
            number = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
            if not math.isfinite(number):
                bad[key] = number
        if bad:
            terms = ', '.join(f'{k}={v}' for k, v in bad.items())
            raise DivergenceError(self._message(runner, terms, from_loss=True))
        if self.check_interval > 0 and self.every_n_train_iters(runner, self.check_interval):
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            params = list(model.named_parameters())
            names = nonfinite_tensors(params)
            if names:
                raise DivergenceError(self._message(
                    runner, 'after its update, ' + _some(names, len(params), 'parameter tensors')))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        names, total = checkpoint_nonfinite(checkpoint)
        if names:
            raise DivergenceError(self._message(runner, 'the checkpoint to be saved was not '
                                                'written: ' + _some(names, total, 'tensors')))
        self.last_finite = runner.message_hub.get_info('last_ckpt')
        self.last_finite_iter = (checkpoint.get('meta') or {}).get('iter')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):
            return
        path = runner._load_from or find_latest_checkpoint(runner.work_dir)
        names, total = checkpoint_nonfinite(checkpoint)
        if names:
            raise DivergenceError(
                f'--resume: in {path}, {_some(names, total, "tensors")}: it was written '
                'after the training diverged. Move it (and any later checkpoint) out of '
                f'{runner.work_dir} and --resume again: the newest checkpoint left is resumed.')
        self.last_finite = path
        self.last_finite_iter = (checkpoint.get('meta') or {}).get('iter')

    def _message(self, runner, what: str, from_loss: bool = False) -> str:
        try:
            lr = '/'.join(f'{v:g}' for v in sorted(set(runner.optim_wrapper.get_lr()['lr'])))
        except Exception:  # an optimizer wrapper without get_lr()['lr']
            lr = 'unknown'
        return (f'Training diverged at iteration {runner.iter + 1}: {what} (learning rate(s) '
                f'{lr}, loss reduction {_loss_reduction(runner)!r}). Likely cause: the '
                'learning rate is too large for the loss reduction. The FCN reference SUMS the '
                "loss over pixels (reduction='sum', ~2.5e5 pixels per 500x500 image) and uses "
                'lr 1e-10 (FCN-32s), 1e-12 (16s), 1e-14 (8s); lr 1e-4 with a summed loss '
                "diverges. With reduction='mean' use a rate about the pixel count larger. Other "
                'causes: a label outside 0..num_classes-1/255 (run tools/check_dataset.py '
                'CONFIG), or fp16 overflow. ' + self._advice(runner, from_loss))

    def _advice(self, runner, from_loss: bool) -> str:
        config = getattr(runner.cfg, 'filename', None) or 'CONFIG'
        lr = configured_lr(runner.cfg)
        option = 'optim_wrapper.optimizer.lr=' + (f'{lr / 10:g}' if lr else 'LOWER_LR')
        if self.last_finite:
            # a loss is computed before the update: this one came from the weights saved last
            caveat = (' Its weights gave this NaN/inf loss: should a resumed run stop here '
                      'again, move it out of the work dir (--resume then takes the checkpoint '
                      'before it) or start again.'
                      if from_loss and self.last_finite_iter == runner.iter else '')
            return (f'The last checkpoint verified finite is {self.last_finite} (this '
                    f'iteration was not saved).{caveat} Continue from it at a lower learning '
                    'rate (the one given replaces the saved one): python tools/train.py '
                    f'{config} --resume --cfg-options {option}')
        return ('No checkpoint verified finite was written. Start again at a lower learning '
                f'rate: python tools/train.py {config} --cfg-options {option}')


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


def _some(names: List[str], total: int, what: str) -> str:
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
