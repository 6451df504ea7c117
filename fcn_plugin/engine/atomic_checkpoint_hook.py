"""Checkpoints that are either complete or absent, and a resume that picks the newest complete one.

mmengine 0.10.7 writes a checkpoint with ``open(path, 'wb').write(bytes)`` under its final name
(``LocalBackend.put``); a job killed during that write leaves a truncated ``iter_N.pth``.
``CheckpointHook`` also deletes the oldest checkpoint (``max_keep_ckpts``) *before* writing the
new one, and writes ``work_dir/last_checkpoint`` (what ``--resume`` reads) non-atomically.
"""
import glob
import logging
import os
import os.path as osp
import re
import zipfile
from typing import List, Optional

from mmengine.dist import barrier, is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

_TMP_PATTERN = '.*.tmp-*'


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole ``torch.save`` file (zip format, central directory readable).

    A truncated zip has no end-of-central-directory record, so this fails on it without
    reading (or unpickling) the data.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def find_newest_complete_checkpoint(directory: str) -> Optional[str]:
    """The most recently written complete ``iter_N.pth``/``epoch_N.pth`` in ``directory``.

    Newest by modification time (a rename keeps the time the data was written), so a stale
    higher-numbered checkpoint of an older run in the same folder is not preferred.
    """
    candidates: List[str] = [
        p for p in glob.glob(osp.join(directory, '*.pth'))
        if re.fullmatch(r'(iter|epoch)_\d+\.pth', osp.basename(p))
    ]
    candidates.sort(key=lambda p: (os.path.getmtime(p), p), reverse=True)
    for path in candidates:
        if is_complete_checkpoint(path):
            return path
    return None


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(path: str, text: str) -> None:
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class _DeferredRemoval:
    """A file backend proxy that postpones ``remove`` until the next checkpoint is complete."""

    def __init__(self, backend, pending: list):
        self._backend = backend
        self._pending = pending

    def remove(self, filepath) -> None:
        self._pending.append((self._backend, str(filepath)))

    def __getattr__(self, name):
        return getattr(self._backend, name)


@HOOKS.register_module()
class AtomicCheckpointHook(Hook):
    """Make every ``runner.save_checkpoint`` atomic and ``--resume`` pick a complete file.

    - ``before_run``: ``runner.save_checkpoint`` (used by ``CheckpointHook`` for the periodic,
      last and best checkpoints) is wrapped: mmengine writes to ``.<name>.tmp-<pid>`` in the same
      folder, the file is fsync'ed and renamed over the final name with ``os.replace`` (atomic on
      POSIX and Windows). A kill mid-write leaves only the temporary file, which nothing reads;
      stale temporary files of killed runs are removed here.
    - ``before_run`` when resuming (``resume=True`` without ``load_from``, i.e. ``--resume``):
      if ``last_checkpoint`` is missing, unreadable, points at an incomplete file, or a complete
      checkpoint newer than it exists (a kill between the rename and the ``last_checkpoint``
      update), it is rewritten to :func:`find_newest_complete_checkpoint`, with a warning.
    - ``before_train`` (priority ``LOWEST``, after ``CheckpointHook`` set up its file backend):
      the checkpoint hook's deletions of old checkpoints (``max_keep_ckpts``, previous best) are
      postponed until the new checkpoint is complete, so even ``max_keep_ckpts=1`` always keeps
      one complete checkpoint on disk.

    Remote checkpoint folders (``out_dir`` with a ``scheme://``) are written as mmengine does.
    """

    priority = 'LOWEST'

    def __init__(self) -> None:
        self._pending_removals: list = []

    def before_run(self, runner) -> None:
        self._wrap_save(runner)
        if is_main_process():
            for tmp in glob.glob(osp.join(runner.work_dir, _TMP_PATTERN)):
                os.remove(tmp)
        if getattr(runner, '_resume', False) and getattr(runner, '_load_from', None) is None:
            newest = self._newest_to_resume(runner)  # the same decision on every rank
            if newest and is_main_process():
                write_text_atomic(osp.join(runner.work_dir, 'last_checkpoint'), newest)
            barrier()  # every rank reads last_checkpoint after it was repaired

    def before_train(self, runner) -> None:
        for hook in runner.hooks:
            backend = getattr(hook, 'file_backend', None)
            if isinstance(hook, CheckpointHook) and backend is not None and not isinstance(
                    backend, _DeferredRemoval):
                hook.file_backend = _DeferredRemoval(backend, self._pending_removals)

    def _wrap_save(self, runner) -> None:
        original = runner.save_checkpoint
        if getattr(original, '_fcn_atomic', False):
            return

        def save_checkpoint(out_dir, filename, *args, **kwargs):
            if not is_main_process() or '://' in str(out_dir) or kwargs.get(
                    'backend_args') or kwargs.get('file_client_args') or (args and args[0]):
                return original(out_dir, filename, *args, **kwargs)  # master_only: no-op
            final = osp.join(out_dir, filename)
            tmp_name = osp.join(osp.dirname(filename),
                                f'.{osp.basename(filename)}.tmp-{os.getpid()}')
            tmp = osp.join(out_dir, tmp_name)
            try:
                original(out_dir, tmp_name, *args, **kwargs)
                _fsync(tmp)
                os.replace(tmp, final)
            finally:
                if osp.exists(tmp):
                    os.remove(tmp)
            self._flush_removals(keep=final)

        save_checkpoint._fcn_atomic = True
        runner.save_checkpoint = save_checkpoint

    def _flush_removals(self, keep: str) -> None:
        pending, self._pending_removals[:] = list(self._pending_removals), []
        for backend, path in pending:
            if osp.abspath(path) == osp.abspath(keep):
                continue  # the same name was just rewritten
            if backend.isfile(path):
                backend.remove(path)
            elif backend.isdir(path):
                backend.rmtree(path)

    @staticmethod
    def _newest_to_resume(runner) -> Optional[str]:
        """The checkpoint ``last_checkpoint`` should name, if it must be rewritten."""
        save_file = osp.join(runner.work_dir, 'last_checkpoint')
        recorded = None
        if osp.isfile(save_file):
            with open(save_file) as f:
                recorded = f.read().strip() or None
        folders = [runner.work_dir]
        if recorded and osp.dirname(recorded) and '://' not in recorded:
            folders.insert(0, osp.dirname(recorded))
        newest = None
        for folder in folders:
            newest = find_newest_complete_checkpoint(folder)
            if newest:
                break
        if recorded and '://' in recorded:
            return None  # a remote checkpoint: leave it to mmengine
        recorded_ok = bool(recorded) and osp.isfile(recorded) and is_complete_checkpoint(
            recorded)
        if recorded_ok and (newest is None or osp.samefile(newest, recorded) or
                            os.path.getmtime(recorded) >= os.path.getmtime(newest)):
            return None
        if newest is None:
            if recorded is None:
                return None  # nothing was ever saved here: mmengine starts from scratch
            raise FileNotFoundError(
                f'--resume: {save_file} names {recorded}, which is missing or incomplete, and '
                f'{runner.work_dir} holds no other complete checkpoint (iter_N.pth/epoch_N.pth). '
                'Start without --resume, or set load_from to a checkpoint to resume from.')
        why = ('is missing or incomplete' if not recorded_ok else 'is older than ' + newest)
        print_log(
            f'--resume: last_checkpoint names {recorded}, which {why}; resuming from the newest '
            f'complete checkpoint {newest} instead.',
            logger='current',
            level=logging.WARNING)
        return newest


def settle_resume(cfg) -> None:
    """Make ``--resume`` continue this run's own checkpoints when ``load_from`` is also set.

    mmengine resumes *from* ``load_from`` whenever both are set. The staged recipes set
    ``load_from`` to initialise a stage (FCN-16s from FCN-32s's final checkpoint), so a resumed
    FCN-16s run would restart from FCN-32s at iteration 100000 and stop at once. Here: if the
    work dir holds a checkpoint, ``load_from`` is dropped and mmengine resumes from the newest
    one; if it holds none, there is nothing to resume and the stage starts from ``load_from``.
    """
    if not cfg.get('resume') or not cfg.get('load_from'):
        return
    work_dir = cfg.work_dir
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')) or find_newest_complete_checkpoint(
            work_dir):
        print_log(f'--resume: continuing the checkpoints in {work_dir}; load_from '
                  f'({cfg.load_from}) only initialises a new run', logger='current')
        cfg.load_from = None
    else:
        print_log(f'--resume: no checkpoint in {work_dir} yet; starting from load_from '
                  f'({cfg.load_from})', logger='current')
        cfg.resume = False
