"""``--resume`` with a new learning rate: the rate configured now wins over the saved one.

mmengine's ``Runner.resume`` loads ``checkpoint['optimizer']`` (its ``param_groups`` carry the
learning rate the checkpoint was trained with) and the parameter schedulers' states after
building the optimizer from the config, so ``--resume --cfg-options
optim_wrapper.optimizer.lr=1e-11`` silently continues at the old rate. ``Runner.load_checkpoint``
calls the hooks' ``after_load_checkpoint`` with the loaded dict before either is loaded:
:class:`LrOverrideHook` rewrites the saved rates there.
"""
import ast
import logging
import math
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS


def configured_lr(cfg) -> Optional[float]:
    """``optim_wrapper.optimizer.lr`` of a config (``None`` where there is no such number)."""
    try:
        lr = cfg['optim_wrapper']['optimizer']['lr']
    except (KeyError, TypeError):
        return None
    return float(lr) if isinstance(lr, (int, float)) and not isinstance(lr, bool) else None


def saved_lr(cfg_text: Optional[str]) -> Optional[float]:
    """``optim_wrapper.optimizer.lr`` in a checkpoint's ``meta['cfg']`` (the config's
    ``pretty_text``), read with :mod:`ast`: a checkpoint's text is never executed."""
    try:
        tree = ast.parse(cfg_text or '')
    except (SyntaxError, ValueError):
        return None
    value = None
    for node in tree.body:  # the last assignment wins, as when the file is run
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == 'optim_wrapper' for t in node.targets):
            value = _item(_item(node.value, 'optimizer'), 'lr')
    try:
        lr = ast.literal_eval(value) if value is not None else None
    except ValueError:
        return None
    return float(lr) if isinstance(lr, (int, float)) and not isinstance(lr, bool) else None


def _item(node, key: str):
    """The value of ``key`` in a ``dict(...)`` call or a ``{...}`` literal node."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'dict':
        return next((k.value for k in node.keywords if k.arg == key), None)
    if isinstance(node, ast.Dict):
        return next((v for k, v in zip(node.keys, node.values)
                     if isinstance(k, ast.Constant) and k.value == key), None)
    return None


def scale_saved_lr(checkpoint: dict, ratio: float) -> int:
    """Multiply every learning rate saved in ``checkpoint`` by ``ratio``: the optimizer's
    ``param_groups`` (``lr``, ``initial_lr``; also inside an ``OptimWrapperDict``'s state) and
    the lr schedulers' ``base_values``/``_last_value``. Per-group multipliers (``bias_lr_mult``)
    and the schedule's position are kept. Returns the number of param groups changed."""
    changed = 0
    pending = [checkpoint.get('optimizer')]
    while pending:
        state = pending.pop()
        if not isinstance(state, dict):
            continue
        if isinstance(state.get('param_groups'), list):
            for group in state['param_groups']:
                for key in ('lr', 'initial_lr'):
                    if isinstance(group.get(key), (int, float)):
                        group[key] = group[key] * ratio
                changed += 1
        else:
            pending.extend(state.values())
    schedulers = checkpoint.get('param_schedulers') or []
    if isinstance(schedulers, dict):
        schedulers = [s for group in schedulers.values() for s in group]
    for scheduler in schedulers:
        if isinstance(scheduler, dict) and scheduler.get('param_name') == 'lr':
            for key in ('base_values', '_last_value'):
                if isinstance(scheduler.get(key), list):
                    scheduler[key] = [v * ratio for v in scheduler[key]]
    return changed


@HOOKS.register_module()
class LrOverrideHook(Hook):
    """On ``--resume``, a changed ``optim_wrapper.optimizer.lr`` replaces the saved rate.

    When the config's ``optim_wrapper.optimizer.lr`` differs from the one in the resumed
    checkpoint's saved config (``meta['cfg']``), every saved learning rate is multiplied by
    new/old before mmengine loads the optimizer and scheduler states (:func:`scale_saved_lr`),
    with a warning saying so. So ``python tools/train.py CONFIG --resume --cfg-options
    optim_wrapper.optimizer.lr=1e-11`` continues at 1e-11 (biases at their 2x), which is what
    :class:`~fcn_plugin.engine.DivergenceError` advises. An unchanged lr leaves the checkpoint
    as it is (a schedule's current rate included); plain ``load_from`` loads no optimizer.
    """

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False) or not isinstance(checkpoint, dict):
            return
        new = configured_lr(runner.cfg)
        old = saved_lr((checkpoint.get('meta') or {}).get('cfg'))
        if new is None or not old or math.isclose(new, old, rel_tol=1e-6):
            return
        groups = scale_saved_lr(checkpoint, new / old)
        print_log(
            f'--resume: the config sets optim_wrapper.optimizer.lr={new:g}, the checkpoint was '
            f'trained with {old:g}: its {groups} optimizer param group(s) and lr schedulers '
            f'continue at {new / old:g} times the saved learning rates.',
            logger='current',
            level=logging.WARNING)
