"""``--resume``: continue this work dir's own checkpoint with the highest iteration (epoch).

mmengine's ``Runner.train`` calls every hook's ``before_run`` and only then ``load_or_resume``,
which resumes from ``load_from`` when it is set, else from the file ``work_dir/last_checkpoint``
names. :class:`ResumeHook` settles both there, so mmseg's ``tools/train.py``, ``mim train`` and
ours behave alike.
"""
import logging
import os.path as osp
from typing import Optional

from mmengine.dist import barrier, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import BaseLoop
from mmseg.registry import HOOKS

from ..utils.io import atomic_write_text
from .checkpoint_files import (checkpoint_step, find_newest_complete_checkpoint,
                               is_complete_checkpoint)


@HOOKS.register_module()
class ResumeHook(Hook):
    """Make ``resume=True`` (``--resume``) continue the work dir's own checkpoints.

    In ``before_run`` of training (priority ``HIGHEST``: before ``ConfigCheckHook`` checks
    ``load_from``), when ``resume`` is set:

    - with ``load_from`` also set (the staged recipes initialise FCN-16s from FCN-32s's final
      checkpoint; mmengine would *resume* from it, at iteration 100000, and stop at once): if the
      work dir holds a checkpoint, ``load_from`` is dropped and the run continues it; if it holds
      none, there is nothing to resume and the run starts from ``load_from``;
    - without ``load_from``: the run continues the complete ``iter_N.pth`` (``epoch_N.pth``)
      with the highest N, :func:`find_newest_complete_checkpoint` (by N, not modification time:
      a copied older checkpoint does not win). ``last_checkpoint`` (what the last save wrote,
      what mmengine reads) is kept when it names that file, or a complete file whose name has
      no N (set by hand); it is rewritten, with a warning, when it is missing, unreadable,
      names an incomplete file, or names a complete checkpoint with a lower N than another
      (a kill between renaming a checkpoint and writing ``last_checkpoint``). If it names a
      file that is gone and nothing complete is left, the run stops with
      ``FileNotFoundError`` instead of silently starting from scratch. A remote
      ``last_checkpoint`` (``scheme://``) is left to mmengine.

    Every rank takes the same decision; rank 0 rewrites ``last_checkpoint`` (atomically) and
    the others wait for it. Testing and validation runners are left alone.
    """

    priority = 'HIGHEST'

    def before_run(self, runner) -> None:
        if not getattr(runner, '_resume', False) or not isinstance(
                getattr(runner, '_train_loop', None), BaseLoop):
            return
        if getattr(runner, '_load_from', None) is not None:
            self.settle_load_from(runner)
        if runner._resume and runner._load_from is None:
            newest = self.newest_to_resume(runner)
            if newest and is_main_process():
                atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'), newest)
            barrier()  # every rank reads last_checkpoint after it was repaired

    @staticmethod
    def settle_load_from(runner) -> None:
        """``resume`` and ``load_from`` both set: continue the work dir, else start from
        ``load_from`` (sets ``runner._load_from`` or ``runner._resume``)."""
        work_dir = runner.work_dir
        if osp.isfile(osp.join(work_dir, 'last_checkpoint')) or \
                find_newest_complete_checkpoint(work_dir):
            print_log(f'--resume: continuing the checkpoints in {work_dir}; load_from '
                      f'({runner._load_from}) only initialises a new run', logger='current')
            runner._load_from = None
        else:
            print_log(f'--resume: no checkpoint in {work_dir} yet; starting from load_from '
                      f'({runner._load_from})', logger='current')
            runner._resume = False

    @staticmethod
    def newest_to_resume(runner) -> Optional[str]:
        """The checkpoint ``last_checkpoint`` should name, if it must be rewritten."""
        save_file = osp.join(runner.work_dir, 'last_checkpoint')
        recorded = None
        if osp.isfile(save_file):
            with open(save_file) as f:
                recorded = f.read().strip() or None
        if recorded and '://' in recorded:
            return None  # a remote checkpoint: leave it to mmengine
        folders = [runner.work_dir]
        if recorded and osp.dirname(recorded):
            folders.insert(0, osp.dirname(recorded))
        newest = None
        for folder in folders:
            newest = find_newest_complete_checkpoint(folder)
            if newest:
                break
        recorded_ok = bool(recorded) and osp.isfile(recorded) and is_complete_checkpoint(
            recorded)
        if recorded_ok and (newest is None or osp.samefile(newest, recorded) or
                            not _numbered_above(newest, recorded)):
            return None
        if newest is None:
            if recorded is None:
                return None  # nothing was ever saved here: mmengine starts from scratch
            raise FileNotFoundError(
                f'--resume: {save_file} names {recorded}, which is missing or incomplete, and '
                f'{runner.work_dir} holds no other complete checkpoint (iter_N.pth/epoch_N.pth). '
                'Start without --resume, or set load_from to a checkpoint to resume from.')
        if recorded is None:
            why = f'{save_file} is missing or empty'
        else:
            why = f'{save_file} names {recorded}, which ' + (
                'is missing or incomplete' if not recorded_ok else
                'is numbered below another complete checkpoint')
        print_log(
            f'--resume: {why}; resuming from the highest-numbered complete checkpoint {newest} '
            'instead.',
            logger='current',
            level=logging.WARNING)
        return newest


def _numbered_above(path: str, recorded: str) -> bool:
    """Whether checkpoint ``path``'s N is above ``recorded``'s; a ``recorded`` name without N
    (set by hand, a best checkpoint) is trusted."""
    step, recorded_step = checkpoint_step(path), checkpoint_step(recorded)
    return step is not None and recorded_step is not None and step > recorded_step
