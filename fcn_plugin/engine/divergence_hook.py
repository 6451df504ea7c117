"""Stop training at the first NaN or infinite loss, before a checkpoint of it can be written."""
import math
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


class DivergenceError(FloatingPointError):
    """The training loss became NaN or infinite."""


@HOOKS.register_module()
class DivergenceHook(Hook):
    """Raise :class:`DivergenceError` when a logged loss is NaN or +-inf.

    It runs after each training iteration, before ``CheckpointHook`` (priority ``ABOVE_NORMAL``
    < ``VERY_LOW``), so the diverged weights are never saved: the newest checkpoint on disk is the
    last good one, and the message names it. The message gives the iteration, the offending
    values, the learning rate and the likely cause: with the reference's loss SUMMED over pixels
    (``reduction='sum'``, ~2.5e5 pixels on a 500x500 image) the learning rate must be tiny
    (1e-10 for FCN-32s; docs/fcn_reference.md section 3); 1e-4 diverges. A mean-reduced loss needs a
    correspondingly larger rate.

    Every value whose key contains ``loss`` in the train step's outputs is checked; the values
    are already reduced scalars, so the check costs one comparison per term.
    """

    priority = 'ABOVE_NORMAL'

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
            raise DivergenceError(self._message(runner, bad))

    @staticmethod
    def _message(runner, bad: dict) -> str:
        terms = ', '.join(f'{k}={v}' for k, v in bad.items())
        try:
            lr = '/'.join(f'{v:g}' for v in sorted(set(runner.optim_wrapper.get_lr()['lr'])))
        except Exception:  # an optimizer wrapper without get_lr()['lr']
            lr = 'unknown'
        reduction = _loss_reduction(runner)
        last = runner.message_hub.get_info('last_ckpt')
        kept = (f'The last good checkpoint is {last} (this iteration was not saved); resume '
                'from it with --resume after fixing the cause.' if last else
                'No checkpoint was written before the divergence.')
        return (f'Training diverged at iteration {runner.iter + 1}: {terms} (learning rate(s) '
                f'{lr}, loss reduction {reduction!r}). Likely cause: the learning rate is too '
                'large for the loss reduction. The FCN reference SUMS the loss over pixels '
                "(reduction='sum', ~2.5e5 pixels per 500x500 image) and uses lr 1e-10 (FCN-32s), "
                '1e-12 (16s), 1e-14 (8s); lr 1e-4 with a summed loss diverges. With '
                "reduction='mean' use a rate about the pixel count larger. Other causes: "
                'a label outside 0..num_classes-1/255 (run tools/check_dataset.py CONFIG), or '
                'fp16 overflow. ' + kept)


def _loss_reduction(runner) -> str:
    """The decode head's loss reduction from the config, as far as it is known."""
    try:
        loss = runner.cfg.model.decode_head.loss_decode
        losses = loss if isinstance(loss, (list, tuple)) else [loss]
        return '/'.join(str(item.get('reduction', 'mean')) for item in losses)
    except (AttributeError, KeyError, TypeError):
        return 'unknown'
