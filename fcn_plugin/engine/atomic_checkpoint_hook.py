"""Checkpoints that are either complete or absent.

mmengine 0.10.7's ``CheckpointHook`` writes a checkpoint with ``open(path, 'wb').write(bytes)``
under its final name (``LocalBackend.put``): a job killed during that write leaves a truncated
``iter_N.pth``. It also deletes the oldest checkpoint (``max_keep_ckpts``) and the previous best
one *before* writing the new one, and writes ``work_dir/last_checkpoint`` (what ``--resume``
reads) non-atomically. :class:`AtomicCheckpointHook` is that hook with those three fixed; what
``--resume`` does with the files is :class:`~fcn_plugin.engine.resume_hook.ResumeHook`'s.
"""
import glob
import os
import os.path as osp
from typing import List

from mmengine.dist import is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmseg.registry import HOOKS

from ..utils.io import atomic_write, atomic_write_text

TMP_PATTERN = '.*.tmp-*'  # fcn_plugin.utils.io.atomic_write's temporary files


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
        self.atomic_saves_of = runner
        self._hook = hook

    def save_checkpoint(self, out_dir, filename, *args, **kwargs) -> None:
        self._hook.save_atomically(self.atomic_saves_of, out_dir, filename, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.atomic_saves_of, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """:class:`mmengine.hooks.CheckpointHook` (same arguments) whose files are complete or absent.

    - Every checkpoint (periodic, last, best) is written by mmengine to a hidden temporary file
      ``.<name>.tmp-*`` in the same folder, fsync'ed and renamed over ``<name>``
      (:func:`fcn_plugin.utils.io.atomic_write`): a kill mid-write leaves only the temporary
      file, which nothing reads; ``before_train`` removes those left by killed runs.
    - ``last_checkpoint`` is written the same way, after the checkpoint it names is complete.
    - Old checkpoints (``max_keep_ckpts``, the previous best) are deleted only once the new
      checkpoint is complete, so even ``max_keep_ckpts=1`` always keeps one complete checkpoint.

    Our configs select it as ``default_hooks.checkpoint`` (``interval``, ``max_keep_ckpts``...
    as for ``CheckpointHook``). Remote folders (``out_dir`` with a ``scheme://``, or a
    non-local ``backend_args``) are written as mmengine does.
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

    def save_atomically(self, runner, out_dir, filename, *args, **kwargs) -> None:
        """``runner.save_checkpoint(out_dir, filename, ...)``, through a temporary file."""
        if not self._local or not is_main_process():
            runner.save_checkpoint(out_dir, filename, *args, **kwargs)
            return
        final = osp.join(out_dir, filename)
        with atomic_write(final) as tmp:
            runner.save_checkpoint(out_dir, osp.relpath(tmp, out_dir), *args, **kwargs)
        self._written.append(final)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        """mmengine's, except that old checkpoints are deleted after the new one and
        ``last_checkpoint`` are complete (``self.file_backend`` defers the deletions)."""
        runner = getattr(runner, 'atomic_saves_of', runner)
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                old_step = self.keep_ckpt_ids.popleft()
                if is_main_process():
                    self.file_backend.remove(
                        self.file_backend.join_path(self.out_dir,
                                                    self.filename_tmpl.format(old_step)))
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        self.save_atomically(
            runner,
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        self._delete_pending()

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """mmengine's, with atomic writes and the previous best deleted after the new one."""
        super()._save_best_checkpoint(_AtomicSaves(self, runner), metrics)
        if is_main_process():
            self._delete_pending()

    def _delete_pending(self) -> None:
        if isinstance(self.file_backend, _DeferredRemovals):
            self.file_backend.flush(keep=self._written)
        self._written = []
