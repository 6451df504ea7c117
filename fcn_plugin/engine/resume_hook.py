"""``--resume``: continue this work dir's own newest complete checkpoint.

mmengine's ``Runner.train`` calls every hook's ``before_run`` and only then ``load_or_resume``,
which resumes from ``load_from`` when it is set, else from the file ``work_dir/last_checkpoint``
names. :class:`ResumeHook` settles both there, so mmseg's ``tools/train.py``, ``mim train`` and
ours behave alike.
"""
import glob
import logging
import os
import os.path as osp
import re
import zipfile
from typing import List, Optional

from mmengine.dist import barrier, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import BaseLoop
from mmseg.registry import HOOKS

from ..utils.io import atomic_write_text


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


@HOOKS.register_module()
class ResumeHook(Hook):
    """Make ``resume=True`` (``--resume``) continue the work dir's own checkpoints.

    In ``before_run`` of training (priority ``HIGHEST``: before ``ConfigCheckHook`` checks
    ``load_from``), when ``resume`` is set:

    - with ``load_from`` also set (the staged recipes initialise FCN-16s from FCN-32s's final
      checkpoint; mmengine would *resume* from it, at iteration 100000, and stop at once): if the
      work dir holds a checkpoint, ``load_from`` is dropped and the run continues it; if it holds
      none, there is nothing to resume and the run starts from ``load_from``;
    - without ``load_from``: if ``last_checkpoint`` is missing, unreadable, names an incomplete
      file, or a complete checkpoint newer than it exists (a kill between writing a checkpoint
      and ``last_checkpoint``), it is rewritten to :func:`find_newest_complete_checkpoint`, with
      a warning. If it names a file that is gone and nothing complete is left, the run stops
      with ``FileNotFoundError`` instead of silently starting from scratch.

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
                            os.path.getmtime(recorded) >= os.path.getmtime(newest)):
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
                'is missing or incomplete' if not recorded_ok else 'is older than ' + newest)
        print_log(
            f'--resume: {why}; resuming from the newest complete checkpoint {newest} instead.',
            logger='current',
            level=logging.WARNING)
        return newest
