"""Checkpoints that are complete or absent, finite, and no more of them than ``max_keep_ckpts``.

mmengine 0.10.7's ``CheckpointHook`` writes a checkpoint with ``open(path, 'wb').write(bytes)``
under its final name (``LocalBackend.put``): a job killed during that write leaves a truncated
``iter_N.pth``. It also deletes the oldest checkpoint (``max_keep_ckpts``) and the previous best
one *before* writing the new one. :class:`AtomicCheckpointHook` is that hook with its saves
written through a temporary file, the deletions done once the new file is complete, a
checkpoint holding NaN/inf never written, a surplus checkpoint (a kill between the rename and
the deletion) removed at the next save or start, and a full disk reported with the space
needed. Which file ``--resume`` continues: :func:`~.checkpoint_files.resume_target`.
"""
import contextlib
import copy
import errno
import glob
import logging
import os
import os.path as osp
from collections import deque
from typing import List

from mmengine.dist import is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ..utils.io import atomic_write, atomic_write_text
from .checkpoint_files import no_space_message, surplus_checkpoints
from .divergence import checkpoint_nonfinite, describe_nonfinite, diverged
from .runs import HUB_KEY, RUN_KEY, config_name, run_of

TMP_PATTERN = '.*.tmp-*'  # fcn_plugin.utils.io.atomic_write's temporary files
# what a failed save must not change (with the message hub's runtime info)
_STATE = ('keep_ckpt_ids', 'last_ckpt', 'best_ckpt_path', 'best_ckpt_path_dict')


class _DeferredRemovals:
    """A file backend whose ``remove``/``rmtree`` wait for :meth:`flush`."""

    def __init__(self, backend):
        self._backend = backend
        self.pending: List[str] = []

    def remove(self, filepath) -> None:
        self.pending.append(str(filepath))

    rmtree = remove

    def flush(self, keep=()) -> None:
        """Delete the pending paths, except ``keep`` (names that were just written again)."""
        keep = {osp.abspath(p) for p in keep}
        pending, self.pending = self.pending, []
        for path in pending:
            if osp.abspath(path) in keep:
                continue
            if self._backend.isfile(path):
                self._backend.remove(path)
            elif self._backend.isdir(path):
                self._backend.rmtree(path)

    def __getattr__(self, name):
        return getattr(self._backend, name)


class _AtomicSaves:
    """The runner as ``CheckpointHook``'s code sees it: ``save_checkpoint`` writes atomically."""

    def __init__(self, hook: 'AtomicCheckpointHook', runner):
        self._runner = runner
        self._hook = hook

    def save_checkpoint(self, out_dir, filename, *args, **kwargs) -> None:
        self._hook.save_atomically(self._runner, out_dir, filename, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._runner, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """:class:`mmengine.hooks.CheckpointHook` (same arguments) whose files are complete, finite
    or absent.

    - Every checkpoint (periodic, last, best) is written by mmengine to a hidden temporary file
      ``.<name>.tmp-*`` in the same folder, fsync'ed and renamed over ``<name>``
      (:func:`fcn_plugin.utils.io.atomic_write`): a kill mid-write leaves only the temporary
      file, which nothing reads; ``before_train`` removes those left by killed runs. Then
      ``last_checkpoint`` is rewritten atomically.
    - A checkpoint whose weights or optimizer state hold NaN/inf is not written: the run stops
      with :class:`~.divergence.DivergenceError` (``before_save_checkpoint``).
    - Old checkpoints (``max_keep_ckpts``, the previous best) are deleted only once the new
      checkpoint is complete, so even ``max_keep_ckpts=1`` always keeps one complete checkpoint;
      the disk needs room for ``max_keep_ckpts + 1`` checkpoints.
    - Retention follows the files, not only ``keep_ckpt_ids`` (restored from the checkpoint on
      resume, so blind to a file a killed run did not delete): after each save and at the
      start, of the ``filename_tmpl`` files in ``out_dir`` numbered up to the current step,
      the complete ones beyond the ``max_keep_ckpts`` highest are deleted, and truncated zip
      files (a plain mmengine run killed mid-write) too. Higher-numbered files (another run's)
      and non-zip files are left alone.
    - A save that raises (disk full, a non-finite checkpoint) leaves no file, deletes nothing
      and changes neither ``last_checkpoint`` nor ``last_ckpt``/``keep_ckpt_ids``/
      ``best_ckpt``; a full disk raises ``OSError(ENOSPC)`` naming the checkpoint, the space
      it needs and the space free.

    Our configs select it as ``default_hooks.checkpoint``. Remote folders (``out_dir`` with a
    ``scheme://``, or a non-local ``backend_args``) are written as mmengine does.

    It overrides two private methods of ``CheckpointHook`` (``_save_checkpoint_with_step``,
    ``_save_best_checkpoint``), calling them with the runner's ``save_checkpoint`` made atomic:
    they are where mmengine 0.10.7 saves, and it has no public way to change how.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._local = False
        self._written: List[str] = []

    def before_train(self, runner) -> None:
        super().before_train(runner)  # may delete surplus old checkpoints: others are kept
        backend = self.file_backend
        self._local = isinstance(getattr(backend, 'client', backend), LocalBackend)
        if self._local and is_main_process():
            for folder in {self.out_dir, runner.work_dir}:
                for tmp in glob.glob(osp.join(folder, TMP_PATTERN)):
                    os.remove(tmp)
        if not isinstance(backend, _DeferredRemovals):
            self.file_backend = _DeferredRemovals(backend)
        self._retain(runner, runner.epoch if self.by_epoch else runner.iter, start=True)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Refuse to write a checkpoint holding NaN/inf (weights or optimizer state); record
        the run and config that write it (``meta['fcn_run']``)."""
        names, total = checkpoint_nonfinite(checkpoint)
        if names:
            raise diverged(
                runner, 'the checkpoint to be saved was not written: ' +
                describe_nonfinite(names, total, 'tensors'))
        checkpoint.setdefault('meta', {})[RUN_KEY] = dict(
            id=runner.message_hub.get_info(HUB_KEY), config=config_name(runner.cfg))

    def save_atomically(self, runner, out_dir, filename, *args, **kwargs) -> None:
        """``runner.save_checkpoint(out_dir, filename, ...)``, through a temporary file."""
        if not self._local or not is_main_process():
            runner.save_checkpoint(out_dir, filename, *args, **kwargs)
            return
        final, written = osp.join(out_dir, filename), 0
        try:
            with atomic_write(final) as tmp:
                try:
                    runner.save_checkpoint(out_dir, osp.relpath(tmp, out_dir), *args, **kwargs)
                finally:
                    written = osp.getsize(tmp) if osp.isfile(tmp) else 0
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise OSError(exc.errno,
                          no_space_message(final, written, self.filename_tmpl,
                                           self.max_keep_ckpts)) from exc
        self._written.append(final)

    def save_step(self, runner, step: int) -> str:
        """Save the iteration-based checkpoint of iteration ``step`` now (as the periodic save
        does, retention included), between iterations; its path. Nothing is written if the
        last save was that step's (the periodic save of the same iteration)."""
        path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(step))
        if self.last_ckpt != path:
            self._save_checkpoint_with_step(runner, step, dict(epoch=runner.epoch, iter=step))
        return path

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        """mmengine's, saving atomically; old checkpoints are deleted once the new one and
        ``last_checkpoint`` are complete (``self.file_backend`` defers the deletions)."""
        with self._undone_on_error(runner):
            super()._save_checkpoint_with_step(_AtomicSaves(self, runner), step, meta)
            if is_main_process():  # mmengine wrote it in place: a kill could cut it short
                atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        if is_main_process():
            self._delete_pending()
            self._retain(runner, step)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """mmengine's, with atomic writes and the previous best deleted after the new one."""
        with self._undone_on_error(runner):
            super()._save_best_checkpoint(_AtomicSaves(self, runner), metrics)
        if is_main_process():
            self._delete_pending()

    @contextlib.contextmanager
    def _undone_on_error(self, runner):
        """On an exception, restore the hook's state and the message hub's runtime info (saved
        into the next checkpoint) and drop the pending deletions."""
        info = runner.message_hub.runtime_info
        saved_info = dict(info)
        saved = {name: copy.copy(getattr(self, name)) for name in _STATE if hasattr(self, name)}
        try:
            yield
        except BaseException:
            info.clear()
            info.update(saved_info)
            for name, value in saved.items():
                setattr(self, name, value)
            if isinstance(self.file_backend, _DeferredRemovals):
                self.file_backend.pending.clear()
            self._written = []
            raise

    def _delete_pending(self) -> None:
        if isinstance(self.file_backend, _DeferredRemovals):
            self.file_backend.flush(keep=self._written)
        self._written = []

    def _retain(self, runner, step: int, start: bool = False) -> None:
        """Delete the surplus and truncated checkpoints numbered up to ``step`` (see the class
        doc) and make ``keep_ckpt_ids`` the ones kept."""
        if self.max_keep_ckpts <= 0 or not self._local or not is_main_process():
            return
        try:
            kept, surplus, truncated, later = surplus_checkpoints(self.out_dir, self.filename_tmpl,
                                                                  step, self.max_keep_ckpts)
        except ValueError:  # a filename_tmpl without exactly one {}: mmengine's retention
            return
        run_id = runner.message_hub.get_info(HUB_KEY)
        others = [p for p in surplus if (run_of(p) or {}).get('id') not in (None, run_id)]
        for path in others:
            print_log(
                f'Kept {path} beyond max_keep_ckpts={self.max_keep_ckpts}: another run '
                'wrote it.',
                logger='current',
                level=logging.WARNING)
        for path in [p for p in surplus if p not in others] + truncated:
            os.remove(path)
            print_log(
                f'Removed {path}: ' +
                ('a truncated checkpoint' if path in truncated else
                 f'a complete checkpoint beyond max_keep_ckpts={self.max_keep_ckpts} (left by '
                 'a run stopped between saving a checkpoint and deleting the oldest)'),
                logger='current',
                level=logging.WARNING)
        self.keep_ckpt_ids = deque([n for n, _ in kept], self.max_keep_ckpts)
        runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        if start and later:
            print_log(
                f'{self.out_dir} holds checkpoints numbered above this run\'s {step} '
                f'({osp.basename(later[-1])}): they are left alone, but --resume would '
                'continue the highest-numbered one; use another work_dir for a new run.',
                logger='current',
                level=logging.WARNING)
