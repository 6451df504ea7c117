"""Hook names for configs: ``DisabledHook``, and the names earlier versions registered, kept so
that configs naming them still build.

mmengine 0.10.7 takes ``None`` in ``default_hooks`` only for its own hook names (any other key
set to ``None`` fails an assertion), so a runtime hook is turned off by replacing it:
``default_hooks = dict(divergence=dict(type='DisabledHook'))``.

Their work is now done by the runtime's named default hooks and train loop. Each hook name
below, found in a config's ``custom_hooks``, checks at ``before_run`` that its replacement is
installed: then it only says it can be removed; otherwise the run stops with the line to add,
rather than run without the safety the config asked for. ``runner_type='FCNRunner'`` builds
mmengine's ``Runner`` (child configs set nested keys now: :mod:`fcn_plugin.utils.config_vars`).
"""
import logging

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmseg.registry import HOOKS, RUNNERS

from ..utils.config_vars import ConfigError
from .runner_state import is_training

# old name -> (where its work is done now, the class doing it)
REPLACED = {
    'ResumeHook': ('default_hooks.load_policy', 'LoadPolicyHook'),
    'CheckpointFitHook': ('default_hooks.load_policy', 'LoadPolicyHook'),
    'LrOverrideHook': ('default_hooks.load_policy', 'LoadPolicyHook'),
    'ConfigCheckHook': ('default_hooks.preflight', 'PreflightHook'),
    'DataCheckHook': ('default_hooks.preflight', 'PreflightHook'),
    'ExactResumeHook': ('train_cfg', 'ResumableIterBasedTrainLoop'),
}


@HOOKS.register_module()
class DisabledHook(Hook):
    """Does nothing: stands in for a default hook turned off (see the module doc)."""


class ReplacedHook(Hook):
    """A hook name whose work moved (see the module doc)."""

    def before_run(self, runner) -> None:
        old = type(self).__name__
        where, new = REPLACED[old]
        if where == 'train_cfg':
            present = not is_training(runner) or type(runner.train_loop).__name__ == new
        else:
            present = any(type(h).__name__ == new for h in runner.hooks)
        if not present:
            example = (f"train_cfg=dict(type='{new}')" if where == 'train_cfg' else
                       f"default_hooks=dict({where.split('.')[1]}=dict(type='{new}'))")
            raise ConfigError(
                f'custom_hooks: {old} was replaced by {where} ({new}), which this config does '
                f'not have. Add {example} (configs/_base_/fcn_runtime.py has it) and remove '
                f'{old} from custom_hooks.')
        print_log(
            f'custom_hooks: {old} is no longer needed ({where}, {new}, does its work); '
            'remove it.',
            logger='current',
            level=logging.WARNING)


for _name in REPLACED:
    HOOKS.register_module(
        _name,
        module=type(
            _name, (ReplacedHook, ), {
                '__doc__': (f'Replaced by {REPLACED[_name][1]} ({REPLACED[_name][0]}): see '
                            f'{__name__}.')
            }))


@RUNNERS.register_module()
class FCNRunner(Runner):
    """mmengine's ``Runner``, unchanged (the name of an earlier ``runner_type``)."""
