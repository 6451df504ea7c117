"""Stop a run cleanly when it is asked to: SIGTERM (``kill``, torchrun forwarding its own,
a scheduler), SIGUSR1 (Slurm's ``--signal=B:USR1@120``, Lightning's and submitit's
convention) and SIGINT (Ctrl-C).

Without this, SIGTERM ends the process at once (everything since the last checkpoint is lost),
SIGINT raises ``KeyboardInterrupt`` wherever the run is, and a distributed job ends without a
save. :class:`PreemptionHook` (``default_hooks.preemption``) instead lets every rank finish the
current iteration, saves the checkpoint of the iteration reached through the checkpoint hook
(atomic, finite-only, retention: :meth:`~.checkpoint_hook.AtomicCheckpointHook.save_step`), waits
for that save on every rank and raises :class:`TrainingInterrupted`: ``tools/train.py`` ends with
one line naming the signal, the iteration, the checkpoint and the command that continues it,
and exit status 128 + the signal's number (143 SIGTERM, 138 SIGUSR1, 130 SIGINT), as a shell
reports a process ended by that signal. ``--resume`` from it ends bit-identical to a run that
never stopped (:mod:`.exact_resume`).

- The handlers only record the signal (the first one names the stop; later ones, e.g. a second
  Ctrl-C while the checkpoint is written, are ignored): they never raise, so nothing is cut
  short. They are installed in ``before_train`` (main thread only) and the previous ones are
  restored in ``after_train`` and before :class:`TrainingInterrupted` is raised. A signal
  arriving when the run is no longer active (it ended with an exception) goes to the previous
  handler, which is restored then.
- A signal during a validation inside training stops after the current validation batch
  (``after_val_iter``) instead of after the whole validation; the checkpoint is then the one of
  the iteration before the validation, and the resumed run does not repeat that validation.
- Distributed runs agree on stopping with one all-reduce (max) of a single number per
  iteration (and per validation batch, up to the batches every rank has; one more all-reduce
  per validation counts them); the save is rank 0's, and a second all-reduce makes every rank
  wait for it, so no rank exits (and no launcher kills rank 0) before the file is complete.
- DataLoader workers (``fork``, Linux's default) do not stop on these signals: Ctrl-C reaches
  the whole process group, torchrun signals each rank's process group and Slurm every process
  of a step, and a worker killed mid-batch would make the main process fail in its next fetch
  (or at once, from torch's SIGCHLD check) before it could save. Each worker blocks them and a
  thread of its own takes them: SIGTERM from the main process (the DataLoader or
  multiprocessing stopping the worker) ends the worker as torch's handler does (exit 0), any
  other is ignored; the main process shuts its workers down as usual when it stops, and a
  worker whose main process is gone ends by itself (torch's watchdog). Programs a worker starts
  inherit the blocked signals.
"""
import logging
import multiprocessing.util
import os
import os.path as osp
import shlex
import signal
import sys
import threading
from typing import Optional, Sequence

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from .checkpoint_files import checkpoint_hook, read_last_checkpoint
from .signals import install, installed_hook, quiet_dataloader_worker, signal_name, uninstall

DEFAULT_SIGNALS = ('SIGTERM', 'SIGUSR1', 'SIGINT')


class TrainingInterrupted(RuntimeError):
    """Training stopped on a signal after saving the iteration reached (the message says what
    was saved and how to continue). ``exit_code``: 128 + the signal's number."""

    def __init__(self,
                 message: str,
                 signum: int,
                 iteration: int,
                 checkpoint: Optional[str] = None) -> None:
        super().__init__(message)
        self.signum = signum
        self.iteration = iteration
        self.checkpoint = checkpoint
        self.exit_code = 128 + signum


# ------------------------------------------------------------------------------- the hook
@HOOKS.register_module()
class PreemptionHook(Hook):
    """Stop training on SIGTERM, SIGUSR1 or SIGINT after the current iteration, with the
    checkpoint of the iteration reached saved (see the module doc).

    Priority ``LOWEST``: after the checkpoint hook, so that a periodic save of the same
    iteration is not written twice. Our configs install it as ``default_hooks.preemption``.

    Args:
        signals: the signals that stop the run (names), by default SIGTERM, SIGUSR1, SIGINT
            (add e.g. ``'SIGUSR2'`` for a scheduler that sends it).
    """

    priority = 'LOWEST'

    def __init__(self, signals: Sequence[str] = DEFAULT_SIGNALS) -> None:
        self.signals = tuple(getattr(signal, name) for name in signals if hasattr(signal, name))
        self.received = 0  # the first signal received during the run (0: none)
        self.ignored = []  # signals received after it
        self.active = False
        self._run_frame = None  # (id, code) of the train loop's run() frame
        self._val_synced = 0  # validation batches every rank has (distributed runs)
        if hasattr(signal, 'pthread_sigmask'):
            multiprocessing.util.register_after_fork(self, quiet_dataloader_worker)

    # -------------------------------------------------------------------- installing
    def before_train(self, runner) -> None:
        self.received, self.ignored, self.active = 0, [], False
        if threading.current_thread() is not threading.main_thread():
            print_log(
                'PreemptionHook: training runs outside the main thread, where signal '
                'handlers cannot be installed: SIGTERM/SIGUSR1/SIGINT will not stop it '
                'cleanly.',
                logger='current',
                level=logging.WARNING)
            return
        self._run_frame = _loop_frame(runner.train_loop, sys._getframe(1))
        install(self)
        self.active = True

    def after_train(self, runner) -> None:
        self._release()

    def _release(self) -> None:
        if self.active and installed_hook() is self:
            uninstall()
        self.active = False
        self._run_frame = None

    def running(self, frame) -> bool:
        """Whether the run that installed the handlers is still under way (``frame``: where
        the main thread is): its train loop's ``run()`` is on the stack."""
        if not self.active:
            return False
        if self._run_frame is None or frame is None:
            return True
        frame_id, code = self._run_frame
        while frame is not None:
            if frame.f_code is code and id(frame) == frame_id:
                return True
            frame = frame.f_back
        return False

    def record(self, signum: int) -> None:
        """Called by the handler: remember the signal; never raises."""
        if self.received:
            self.ignored.append(signum)
            return
        self.received = signum
        try:
            print_log(
                f'{signal_name(signum)} received: training stops after the current '
                'iteration, once the checkpoint of the iteration reached is saved (further '
                'signals are ignored until then; SIGKILL ends it at once).',
                logger='current',
                level=logging.WARNING)
        except Exception:  # e.g. a reentrant write into the stream being written
            pass

    # ---------------------------------------------------------------------- stopping
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self.active:
            return
        signum = _max_over_ranks(self.received)  # the same on every rank
        if signum:
            self._stop(runner, signum, runner.iter + 1, in_validation=False)

    def before_val_epoch(self, runner) -> None:
        self._val_synced = 0
        if self.active and get_world_size() > 1:
            try:
                batches = len(runner.val_loop.dataloader)
            except TypeError:  # an iterable dataset: no stop inside its validation
                batches = 0
            self._val_synced = _min_over_ranks(batches)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self.active:
            return
        if get_world_size() > 1:
            if batch_idx >= self._val_synced:  # not every rank has this batch
                return
            signum = _max_over_ranks(self.received)
        else:
            signum = self.received
        if signum:
            self._stop(runner, signum, runner.iter, in_validation=True)

    def _stop(self, runner, signum: int, step: int, in_validation: bool) -> None:
        """Save iteration ``step`` (rank 0), wait for it on every rank, restore the handlers
        and raise :class:`TrainingInterrupted`."""
        hook = checkpoint_hook(runner)
        path, error, why_not = None, None, None
        if hook is None:
            why_not = 'the run has no checkpoint hook'
        elif hook.by_epoch:
            why_not = f'{type(hook).__name__} saves by epoch, not inside one'
        elif not callable(getattr(hook, 'save_step', None)):
            why_not = (f'{type(hook).__name__} cannot save between its periodic saves '
                       '(AtomicCheckpointHook can)')
        else:
            try:
                path = hook.save_step(runner, step)
            except Exception as exc:  # reported on every rank, raised below
                error = exc
        failed = _max_over_ranks(1 if error is not None else 0)  # also waits for rank 0
        self._release()
        where = (f'during the validation after iteration {step} (stopped there; the resumed '
                 'run does not repeat this validation)'
                 if in_validation else f'after iteration {step}')
        message = f'{signal_name(signum)} received: training stopped {where}'
        if path is not None and not failed:
            message += f'; checkpoint {path} saved'
        else:
            if why_not is not None:
                message += f'; nothing was saved: {why_not}'
            elif error is not None:
                message += (f'; the checkpoint of iteration {step} could not be saved: '
                            f'{type(error).__name__}: {error}')
            else:
                message += (f'; the checkpoint of iteration {step} could not be saved (rank 0 '
                            'says why)')
            path = read_last_checkpoint(runner.work_dir)
            message += f'; the last checkpoint is {path}' if path else '; no checkpoint exists'
        message += f'. Continue with: {continue_command(runner)}'
        raise TrainingInterrupted(message, signum, step, path) from error


def _loop_frame(loop, frame) -> Optional[tuple]:
    """``(id, code)`` of the outermost frame running ``loop.run()`` (a subclass's ``run``
    calling ``super().run()`` counts as the subclass's) above ``frame``; None if none."""
    found = None
    while frame is not None:
        if frame.f_code.co_name == 'run' and frame.f_locals.get('self') is loop:
            found = (id(frame), frame.f_code)
        frame = frame.f_back
    return found


def _max_over_ranks(value: int) -> int:
    """``value``'s maximum over the ranks (one all-reduce when distributed)."""
    if get_world_size() <= 1:
        return value
    data = torch.tensor([value], dtype=torch.int64)
    all_reduce(data, op='max')
    return int(data.item())


def _min_over_ranks(value: int) -> int:
    data = torch.tensor([value], dtype=torch.int64)
    all_reduce(data, op='min')
    return int(data.item())


# ------------------------------------------------------------------------- the command
_LAUNCHER_OPTIONS = ('--launcher', '--local-rank', '--local_rank')


def _tool_arguments() -> Optional[list]:
    """The arguments ``tools/train.py`` was started with (the launcher's own removed), when
    this process is that tool; None otherwise."""
    if not sys.argv or osp.basename(sys.argv[0]) != 'train.py' or len(sys.argv) < 2:
        return None
    args, words = [], iter(sys.argv[1:])
    for word in words:
        if word in _LAUNCHER_OPTIONS:
            next(words, None)
        elif word.split('=', 1)[0] not in _LAUNCHER_OPTIONS:
            args.append(word)
    return args


def continue_command(runner) -> str:
    """The command that continues this run (``--resume`` added): ``python tools/train.py``,
    or the ``dist_train.sh``/``slurm_train.sh`` line of a distributed run, with the arguments
    this process got (or the config and the work dir)."""
    args = _tool_arguments()
    if args is None:
        args = [getattr(runner.cfg, 'filename', None) or 'CONFIG', '--work-dir', runner.work_dir]
    if '--resume' not in args:
        args.append('--resume')
    launcher, world = getattr(runner, 'launcher', 'none'), get_world_size()
    env = []
    if launcher == 'pytorch' and world > 1:
        per_node = os.environ.get('LOCAL_WORLD_SIZE', str(world))
        words = ['bash', 'tools/dist_train.sh', args[0], per_node, *args[1:]]
    elif launcher == 'slurm':
        env = [f'GPUS={world}', f'GPUS_PER_NODE={os.environ.get("SLURM_NTASKS_PER_NODE", world)}']
        words = [
            'bash', 'tools/slurm_train.sh',
            os.environ.get('SLURM_JOB_PARTITION', 'PARTITION'),
            os.environ.get('SLURM_JOB_NAME', 'JOB_NAME'), *args
        ]
    else:
        words = ['python', 'tools/train.py', *args]
    return ' '.join(env + [shlex.quote(str(w)) for w in words])
