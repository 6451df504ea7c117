"""What a run loads, decided in one place: ``--resume`` against ``load_from``, how the
checkpoint must fit the model, and what is checked or changed in a checkpoint being resumed.

mmengine's ``Runner`` calls the hooks' ``before_run``, then ``load_or_resume``: with
``resume`` it continues the file ``work_dir/last_checkpoint`` names, or ``load_from`` *as a
resumption* when that is set; ``Runner.load_checkpoint`` then calls ``after_load_checkpoint``
with the loaded dict before any of it reaches the model, optimizer or schedulers.
:class:`LoadPolicyHook` settles the request in ``before_run`` and checks the checkpoint in
``after_load_checkpoint``, so mmseg's ``tools/train.py``/``tools/test.py``, ``mim`` and our
tools behave alike.
"""
import ast
import logging
import math
import os.path as osp
import uuid
from collections.abc import Mapping
from glob import glob
from typing import Dict, List, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ..utils.checkpoint_fit import attach_checkpoint_fit, remember_source
from ..utils.config_vars import ConfigError
from ..utils.io import atomic_write_text
from .checkpoint_files import (checkpoint_folder, checkpoint_hook, is_complete_checkpoint,
                               numbered_checkpoints, read_last_checkpoint, resume_target, shown)
from .divergence import DivergenceError, checkpoint_nonfinite, configured_lr, describe_nonfinite
from .runner_state import LoadRequest, is_training, load_request, set_load_request
from .runs import HUB_KEY, RunConflictError, config_name, run_of

UNRECORDED = 'unrecorded'  # checkpoints written before runs were recorded


@HOOKS.register_module()
class LoadPolicyHook(Hook):
    """Decide once what the run loads, and hold the checkpoint to it.

    ``before_run`` (priority ``HIGH``), in a training run with ``resume`` (``--resume``):

    - the run continues the checkpoint :func:`~.checkpoint_files.resume_target` finds where
      the checkpoint hook writes (its ``out_dir`` and ``filename_tmpl``): the complete one with
      the highest N, ``last_checkpoint`` repaired when it names another (missing, truncated,
      lower);
    - with ``load_from`` also set (the staged recipes initialise FCN-16s from FCN-32s's final
      checkpoint; mmengine would *resume* from it, at iteration 100000, and stop at once):
      ``load_from`` only starts a run whose checkpoint folder holds no checkpoint yet;
    - with neither, the run starts at iteration 0, saying so (and naming earlier runs' logs in
      the work dir, whose checkpoints were not found);
    - checkpoints there of several runs, or a checkpoint of another config than this run's
      (``meta['fcn_run']``, :mod:`.runs`), are a :class:`~.runs.RunConflictError`.

    A training run without ``resume`` does not start where an earlier run's checkpoints are (it
    would overwrite and delete them): a :class:`~.runs.RunConflictError` says to ``--resume``
    or to use another work dir. The run's id (new, or the resumed run's) goes into the message
    hub for the checkpoint hook to record.

    A ``load_from`` that is not a file is a :class:`~fcn_plugin.utils.config_vars.ConfigError`.
    The model's checkpoint check (:mod:`fcn_plugin.utils.checkpoint_fit`, attached also to
    mmseg's plain ``EncoderDecoder``) is ``'stage'`` for ``load_from`` in a training run that
    does not resume (only the layers the new stage adds may be missing), ``'strict'`` otherwise
    (test, val, ``--resume``); a model configured with ``checkpoint_fit='off'``/``'stage'``
    keeps its setting, restored in ``before_train``.

    ``after_load_checkpoint``: the file is named in fit errors; a resumed checkpoint must hold
    mmengine's ``meta`` (not a bare state dict) and only finite tensors
    (:class:`~.divergence.DivergenceError`), and when the config's
    ``optim_wrapper.optimizer.lr`` differs from the one it was trained with (its saved config,
    read with :mod:`ast`, never run), every saved learning rate is scaled to it
    (:func:`scale_saved_lr`, with a warning): ``--resume --cfg-options
    optim_wrapper.optimizer.lr=1e-11`` continues at 1e-11, biases at their 2x, which is what a
    divergence message advises. mmengine alone would continue at the saved rate.
    """

    priority = 'HIGH'

    def __init__(self) -> None:
        self.source: Optional[str] = None  # the file this run loads
        self.resuming = False
        self.run_id: Optional[str] = None  # recorded in this run's checkpoints
        self._configured_fit: Optional[str] = None

    def before_run(self, runner) -> None:
        request, training = load_request(runner), is_training(runner)
        if training:
            folder, tmpl = checkpoint_folder(checkpoint_hook(runner), runner.work_dir)
            runs = checkpoint_runs(folder, tmpl)
            if request.resume:
                request = self._settle_resume(runner, request)
                set_load_request(runner, request)
            if request.resume:
                self.run_id = self._resumed_run(runner, runs, request.load_from)
                _point_at(runner, request.load_from)
            else:
                self._refuse_earlier_run(folder, runs)
                self.run_id = uuid.uuid4().hex
            runner.message_hub.update_info(HUB_KEY, self.run_id)
        self.source, self.resuming = request.load_from, request.resume
        if self.source and '://' not in self.source and not osp.isfile(osp.expanduser(self.source)):
            raise ConfigError(f'load_from = {self.source!r}: file not found.')
        model = _unwrap(runner.model)
        self._configured_fit = getattr(model, 'checkpoint_fit', 'strict')
        staged = training and self.source is not None and not request.resume
        attach_checkpoint_fit(
            model, 'stage' if staged and self._configured_fit == 'strict' else self._configured_fit)

    def after_load_checkpoint(self, runner, checkpoint) -> None:
        filename = self.source or 'the checkpoint'
        remember_source(checkpoint, filename, overwrite=False)  # the tools' loaders know it
        if not self.resuming or not isinstance(checkpoint, Mapping):
            return
        if 'meta' not in checkpoint:
            raise ValueError(
                f"--resume: {filename} has no 'meta' (iteration, epoch): it holds weights only, "
                'not a training checkpoint written by the runner. Start a new run from it with '
                'load_from instead of resuming.')
        names, total = checkpoint_nonfinite(checkpoint)
        if names:
            raise DivergenceError(
                f'--resume: in {filename}, {describe_nonfinite(names, total, "tensors")}: it '
                'was written after the training diverged. Move it (and any later checkpoint) '
                f'out of {osp.dirname(filename)} and --resume again: the newest checkpoint '
                'left is resumed.')
        new = configured_lr(runner.cfg)
        old = saved_lr((checkpoint.get('meta') or {}).get('cfg'))
        if new is not None and old and not math.isclose(new, old, rel_tol=1e-6):
            groups = scale_saved_lr(checkpoint, new / old)
            print_log(
                f'--resume: the config sets optim_wrapper.optimizer.lr={new:g}, the checkpoint '
                f'was trained with {old:g}: its {groups} optimizer param group(s) and lr '
                f'schedulers continue at {new / old:g} times the saved learning rates.',
                logger='current',
                level=logging.WARNING)

    def before_train(self, runner) -> None:
        if self._configured_fit is not None:
            _unwrap(runner.model).checkpoint_fit = self._configured_fit
        if self.run_id is not None:  # a resumed message hub holds the checkpoint's info
            runner.message_hub.update_info(HUB_KEY, self.run_id)

    @staticmethod
    def _refuse_earlier_run(folder: str, runs: Dict[str, List[str]]) -> None:
        """A new run does not start where another run's checkpoints are (it would overwrite and
        delete them)."""
        names = sorted((n for files in runs.values() for n in files), key=_step_of)
        if names:
            raise RunConflictError(
                f'{folder} holds checkpoints of an earlier run ({_few(names)}): continue it with '
                '--resume, or train this run in another work dir (--work-dir), or move them '
                'away. Nothing was written.')

    @staticmethod
    def _resumed_run(runner, runs: Dict[str, List[str]], target: Optional[str]) -> str:
        """The id of the run ``--resume`` continues; checkpoints of several runs, or of another
        config, are an error."""
        recorded = {run: files for run, files in runs.items() if run != UNRECORDED}
        if len(recorded) > 1:
            groups = '; '.join(f'{_few(files)}' for files in recorded.values())
            raise RunConflictError(
                f'--resume: the checkpoints here were written by {len(recorded)} different runs '
                f'({groups}): move the other run\'s checkpoints away, so that the one to '
                'continue is alone.')
        run = run_of(target) if target and '://' not in target else None
        config = config_name(runner.cfg)
        if run and run.get('config') and config and run['config'] != config:
            raise RunConflictError(
                f"--resume: {target} was written by a run of config {run['config']}, not "
                f'{config}: resume it with that config, or train {config} in another work dir '
                '(--work-dir).')
        return (run or {}).get('id') or uuid.uuid4().hex

    @staticmethod
    def _settle_resume(runner, request: LoadRequest) -> LoadRequest:
        """``--resume``: continue the newest checkpoint, else ``load_from``, else nothing."""
        folder, tmpl = checkpoint_folder(checkpoint_hook(runner), runner.work_dir)
        target = resume_target(runner.work_dir, folder, tmpl)
        if target:
            if request.load_from:
                print_log(
                    f'--resume: continuing {target}; load_from ({request.load_from}) '
                    'only initialises a new run',
                    logger='current')
            return LoadRequest(True, target)
        if request.load_from:
            print_log(
                f'--resume: no checkpoint in {folder} yet; starting from load_from '
                f'({request.load_from})',
                logger='current')
            return LoadRequest(False, request.load_from)
        logs = _earlier_logs(runner)
        print_log(
            f'--resume: found no checkpoint ({shown(tmpl)}) in {folder}' +
            (f', although {runner.work_dir} holds the logs of {len(logs)} earlier run(s) '
             f'({", ".join(logs[-3:])}): if they saved checkpoints elsewhere, set '
             'default_hooks.checkpoint.out_dir/filename_tmpl as they did, or load_from'
             if logs else '') + '. Starting at iteration 0.',
            logger='current',
            level=logging.WARNING)
        return LoadRequest(False, None)


def checkpoint_runs(folder: str, filename_tmpl: str) -> Dict[str, List[str]]:
    """The complete numbered checkpoints in ``folder`` by the run that wrote them (the file
    names; :data:`UNRECORDED` for checkpoints that record no run)."""
    runs: Dict[str, List[str]] = {}
    try:
        numbered = numbered_checkpoints(folder, filename_tmpl)
    except ValueError:  # a filename_tmpl without exactly one {}
        return runs
    for _, path in numbered:
        if is_complete_checkpoint(path):
            run_id = (run_of(path) or {}).get('id') or UNRECORDED
            runs.setdefault(run_id, []).append(osp.basename(path))
    return runs


def _point_at(runner, target: Optional[str]) -> None:
    """Make ``last_checkpoint`` name the checkpoint a resumed run continues (what the
    divergence message names, and what mmengine's own resume reads); written only once the
    resume is allowed."""
    if target and is_main_process() and '://' not in target and \
            read_last_checkpoint(runner.work_dir) != target:
        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'), target)


def _step_of(name: str):
    digits = ''.join(c for c in name if c.isdigit())
    return (int(digits) if digits else -1, name)


def _few(names: List[str]) -> str:
    return ', '.join(names[-3:]) + (f' and {len(names) - 3} more' if len(names) > 3 else '')


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


def _earlier_logs(runner) -> List[str]:
    """The log folders (``<work_dir>/<timestamp>`` with a ``.log``) of earlier runs."""
    current = osp.abspath(runner.log_dir)
    return sorted(
        osp.basename(d) for d in glob(osp.join(runner.work_dir, '*', ''))
        if osp.abspath(d.rstrip(osp.sep)) != current and glob(osp.join(d, '*.log')))


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
