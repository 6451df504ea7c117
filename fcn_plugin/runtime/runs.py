"""One training run per work dir, and which run wrote each checkpoint.

- :class:`WorkDirLockHook` (``default_hooks.work_dir_lock``): a training run holds an exclusive
  lock on ``<work_dir>/.fcn_train.lock`` (a POSIX record lock, ``fcntl.lockf``, taken by rank 0:
  unlike ``flock`` it is not inherited by the DataLoader workers the run forks) from its start
  to its end (or the end of its process); a second training run on the same work dir stops at
  once with a message naming the process, host, start time and config that hold it. The kernel
  releases the lock when its process ends, however it ends, so a killed run never leaves it
  stuck; the file a killed run leaves is recognised as stale and taken over, with a note.
- Every checkpoint records its run and config in ``meta['fcn_run']`` (:func:`run_of`), stamped
  by :class:`~.checkpoint_hook.AtomicCheckpointHook`; :class:`~.load_policy.LoadPolicyHook`
  refuses a new run in a folder that holds an earlier run's checkpoints, and a ``--resume``
  among checkpoints of several runs or of another config; retention deletes only this run's.
"""
import atexit
import datetime
import json
import logging
import os
import os.path as osp
import socket
from typing import Optional

from mmengine.dist import broadcast_object_list, get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from .runner_state import is_training

RUN_KEY = 'fcn_run'  # in a checkpoint's meta: dict(id=..., config=...)
HUB_KEY = 'fcn_run_id'  # in the message hub's runtime info: this run's id
LOCK_NAME = '.fcn_train.lock'
# locks this process holds, by path: a run that raised keeps its lock until the process ends
# (mmengine calls no hook on an exception; the file is removed at exit), so a later run in the
# same process takes it over
_held = {}


class RunConflictError(RuntimeError):
    """A run would mix with another one: a work dir in use, or checkpoints of another run."""


def run_of(path: str) -> Optional[dict]:
    """``meta['fcn_run']`` of a checkpoint (``dict(id, config)``), None if it records none or
    cannot be read. Memory-mapped: the weights are not read."""
    import torch
    try:
        meta = torch.load(path, map_location='cpu', weights_only=True, mmap=True).get('meta')
    except Exception:  # unreadable: the load policy and the loaders name it
        return None
    run = (meta or {}).get(RUN_KEY)
    return run if isinstance(run, dict) else None


def config_name(cfg) -> Optional[str]:
    """The config file's name as runs record it (its base name)."""
    filename = getattr(cfg, 'filename', None)
    return osp.basename(filename) if filename else None


class WorkDirLock:
    """An exclusive ``flock`` on ``<work_dir>/.fcn_train.lock`` that names its holder."""

    def __init__(self, work_dir: str):
        self.path = osp.join(work_dir, LOCK_NAME)
        self._fd: Optional[int] = None

    def acquire(self, config: Optional[str]) -> Optional[str]:
        """Take the lock (raise :class:`RunConflictError` naming the holder if another process
        has it); returns a note if a stale lock file of a run that ended was taken over."""
        import fcntl
        if self.path in _held:  # an earlier run of this process that ended with an error
            os.close(_held.pop(self.path))
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # EAGAIN/EACCES: another process holds it
            holder = self._read(fd)
            os.close(fd)
            raise RunConflictError(
                f'{osp.dirname(self.path)} is in use by another training run '
                f'({self._describe(holder)}): wait for it to end or stop it, or train in '
                'another work dir (--work-dir). Nothing was written.') from None
        stale = self._read(fd)
        os.ftruncate(fd, 0)
        os.write(
            fd,
            json.dumps(
                dict(
                    pid=os.getpid(),
                    host=socket.gethostname(),
                    config=config,
                    started=datetime.datetime.now().isoformat(timespec='seconds'))).encode())
        os.fsync(fd)
        self._fd = _held[self.path] = fd
        atexit.register(self.release)  # an interrupted run leaves no stale file
        if stale and stale.get('pid') != os.getpid():
            return (f'{self.path}: the lock of an earlier run that ended without releasing it '
                    f'({self._describe(stale)}) was taken over')
        return None

    def release(self) -> None:
        if self._fd is not None and _held.get(self.path) == self._fd:
            try:
                os.remove(self.path)  # still ours: the lock is held
            except OSError:
                pass
            os.close(_held.pop(self.path))  # releases the lock
        self._fd = None

    @staticmethod
    def _read(fd: int) -> Optional[dict]:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            return json.loads(os.read(fd, 4096).decode() or 'null')
        except (OSError, ValueError):
            return None

    @staticmethod
    def _describe(holder: Optional[dict]) -> str:
        if not holder:
            return 'holder unknown'
        return (f"pid {holder.get('pid')} on {holder.get('host')}, started "
                f"{holder.get('started')}, config {holder.get('config')}")


@HOOKS.register_module()
class WorkDirLockHook(Hook):
    """Hold the work dir's lock for the length of a training run (see the module doc). Priority
    ``HIGHEST``: before anything else looks at the work dir. Every rank learns rank 0's
    outcome, so a refused distributed run stops on all ranks at once."""

    priority = 'HIGHEST'

    def __init__(self) -> None:
        self._lock: Optional[WorkDirLock] = None

    def before_run(self, runner) -> None:
        if not is_training(runner):
            return
        result = [None]
        if get_rank() == 0:
            self._lock = WorkDirLock(runner.work_dir)
            try:
                result = [('ok', self._lock.acquire(config_name(runner.cfg)))]
            except RunConflictError as error:
                self._lock = None
                result = [('refused', str(error))]
        broadcast_object_list(result, src=0)
        status, message = result[0]
        if status == 'refused':
            raise RunConflictError(message)
        if message:
            print_log(message, logger='current', level=logging.WARNING)

    def after_run(self, runner) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
