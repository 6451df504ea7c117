"""The numbered checkpoints a checkpoint hook writes (``iter_N.pth``, ``epoch_N.pth`` or its
``filename_tmpl``, in its ``out_dir``): which are complete, which is the highest, which are
surplus, and which one ``--resume`` continues (:func:`resume_target`).
:class:`~.checkpoint_hook.AtomicCheckpointHook` and :class:`~.load_policy.LoadPolicyHook`
decide by them."""
import logging
import os
import os.path as osp
import re
import shutil
import string
import zipfile
from typing import List, Optional, Tuple

from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log


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


def checkpoint_pattern(filename_tmpl: Optional[str] = None) -> re.Pattern:
    """The names ``filename_tmpl`` (``CheckpointHook``'s, e.g. ``'iter_{}.pth'``) gives, with
    the iteration or epoch as group 1; by default ``iter_N.pth`` and ``epoch_N.pth``."""
    if filename_tmpl is None:
        return re.compile(r'(?:iter|epoch)_(\d+)\.pth')
    parts = list(string.Formatter().parse(osp.basename(filename_tmpl)))
    fields = [p for p in parts if p[1] is not None]
    if len(fields) != 1:
        raise ValueError(f'filename_tmpl {filename_tmpl!r} must have exactly one {{}} field')
    regex = ''.join(
        re.escape(text) + (r'(\d+)' if field is not None else '') for text, field, _, _ in parts)
    return re.compile(regex)


def shown(filename_tmpl: str) -> str:
    """``filename_tmpl`` as a name pattern for messages: ``iter_{}.pth`` -> ``iter_N.pth``."""
    return re.sub(r'\{[^}]*\}', 'N', filename_tmpl)


def checkpoint_step(path: str, filename_tmpl: Optional[str] = None) -> Optional[int]:
    """The iteration/epoch N in a checkpoint's name (``iter_N.pth``...), None if not such a name."""
    match = checkpoint_pattern(filename_tmpl).fullmatch(osp.basename(path))
    return int(match.group(1)) if match else None


def numbered_checkpoints(directory: str,
                         filename_tmpl: Optional[str] = None) -> List[Tuple[int, str]]:
    """``(N, path)`` of the files named like ``filename_tmpl`` in ``directory`` (complete or
    not; hidden temporary files are not), lowest N first."""
    folder = osp.join(directory, osp.dirname(filename_tmpl or ''))
    pattern = checkpoint_pattern(filename_tmpl)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = [(int(m.group(1)), osp.join(folder, name)) for name in names
             for m in [pattern.fullmatch(name)] if m]
    return sorted((step, path) for step, path in found if osp.isfile(path))


def find_newest_complete_checkpoint(directory: str,
                                    filename_tmpl: Optional[str] = None) -> Optional[str]:
    """The complete ``iter_N.pth``/``epoch_N.pth`` with the highest N in ``directory``.

    By N, not by modification time: a copied (or restored) older checkpoint has a new time but
    is not where the run stopped. Truncated files are skipped.
    """
    for _, path in reversed(numbered_checkpoints(directory, filename_tmpl)):
        if is_complete_checkpoint(path):
            return path
    return None


def is_truncated_checkpoint(path: str) -> bool:
    """A ``torch.save`` zip whose end is missing (a write cut short); a legacy non-zip
    checkpoint is not taken for one."""
    try:
        with open(path, 'rb') as f:
            return f.read(4) == b'PK\x03\x04' and not is_complete_checkpoint(path)
    except OSError:
        return False


def surplus_checkpoints(directory: str, filename_tmpl: str, step: int, keep: int):
    """``(kept, surplus, truncated, later)``: of the checkpoints numbered up to ``step``,
    ``kept`` are ``(N, path)`` of the ``keep`` highest complete ones, ``surplus`` the other
    complete ones, ``truncated`` the cut-short ones; ``later``, the complete ones above ``step``."""
    numbered = numbered_checkpoints(directory, filename_tmpl)
    complete = [(n, p) for n, p in numbered if is_complete_checkpoint(p)]
    upto = [(n, p) for n, p in complete if n <= step]
    kept = upto[-keep:] if keep > 0 else upto
    return (kept, [p for n, p in upto if (n, p) not in kept],
            [p for n, p in numbered
             if n <= step and is_truncated_checkpoint(p)], [p for n, p in complete if n > step])


def no_space_message(path: str, written: int, filename_tmpl: str, max_keep_ckpts: int) -> str:
    """Why checkpoint ``path`` did not fit (``written`` bytes did) and how much space it needs:
    the size of the previous checkpoint named like ``filename_tmpl`` beside it."""
    folder = osp.dirname(path)
    try:
        previous = [
            p for _, p in numbered_checkpoints(folder, filename_tmpl) if is_complete_checkpoint(p)
        ]
    except ValueError:
        previous = []
    size = osp.getsize(previous[-1]) if previous else 0
    needed, free = max(size, written), shutil.disk_usage(folder).free
    basis = (f'the size of the previous checkpoint {osp.basename(previous[-1])}'
             if previous and size >= written else
             f'at least the {_mib(written)} written before the disk was full')
    room = (f'max_keep_ckpts + 1 = {max_keep_ckpts + 1} checkpoints'
            if max_keep_ckpts > 0 else 'one more checkpoint')
    more = f'at least {_mib(needed - free)} ' if needed > free else ''
    return (f'No space left on the device to save checkpoint {path}: it needs about '
            f'{_mib(needed)} free ({basis}); {_mib(free)} free in {folder} now. Free {more}'
            'space there, or use a work_dir on a larger disk: the new checkpoint is written '
            f'before the oldest is deleted, so the disk must hold {room}. '
            'Nothing was lost: the partial file was removed; the previous checkpoints and '
            'last_checkpoint are unchanged.')


def _mib(size: int) -> str:
    return f'{size / 2**20:.1f} MiB'


def checkpoint_hook(runner) -> Optional[CheckpointHook]:
    """The runner's checkpoint hook (mmengine's ``CheckpointHook`` or a subclass), if any."""
    return next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)


def checkpoint_folder(hook: Optional[CheckpointHook], work_dir: str) -> Tuple[str, str]:
    """``(folder, filename_tmpl)`` where ``hook`` writes its numbered checkpoints: mmengine's
    rule (``CheckpointHook.before_train``): ``work_dir``, or ``out_dir/<work_dir's name>`` when
    ``out_dir`` is set. Call it before ``before_train``, which rewrites ``hook.out_dir``."""
    if hook is None:
        return work_dir, 'iter_{}.pth'
    folder = hook.out_dir or work_dir
    if folder != work_dir:
        folder = osp.join(folder, osp.basename(work_dir.rstrip(osp.sep)))
    return folder, hook.filename_tmpl


def read_last_checkpoint(work_dir: str) -> Optional[str]:
    """What ``work_dir/last_checkpoint`` names (mmengine writes it after each save); None if
    it is missing, empty or not text."""
    try:
        with open(osp.join(work_dir, 'last_checkpoint'), encoding='utf-8') as f:
            return f.read().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def resume_target(work_dir: str, folder: str, filename_tmpl: str) -> Optional[str]:
    """The checkpoint ``--resume`` continues: the complete one named like ``filename_tmpl``
    with the highest N in ``folder`` (where the checkpoint hook writes them; by N, not time: a
    copied older file does not win), unless ``work_dir/last_checkpoint`` names a complete one
    that is not numbered below it (a file set by hand, a best checkpoint). A ``last_checkpoint``
    that is missing, unreadable, names an incomplete file or a lower N is passed over with a
    warning. None: nothing was saved. A ``last_checkpoint`` naming a file that is gone while
    nothing complete is left raises ``FileNotFoundError`` (instead of starting again at 0).
    A remote ``last_checkpoint`` (``scheme://``) is returned as it is."""
    recorded = read_last_checkpoint(work_dir)
    if recorded and '://' in recorded:
        return recorded
    newest = None
    for where in dict.fromkeys([folder] + ([osp.dirname(recorded)] if recorded else [])):
        newest = find_newest_complete_checkpoint(where, filename_tmpl)
        if newest:
            break
    recorded_ok = bool(recorded) and osp.isfile(recorded) and is_complete_checkpoint(recorded)
    if recorded_ok and (newest is None or osp.samefile(newest, recorded)
                        or not _numbered_above(newest, recorded, filename_tmpl)):
        return recorded
    save_file = osp.join(work_dir, 'last_checkpoint')
    if newest is None:
        if recorded is None:
            return None
        raise FileNotFoundError(
            f'--resume: {save_file} names {recorded}, which is missing or incomplete, and '
            f'{folder} holds no other complete checkpoint ({shown(filename_tmpl)}). Start '
            'without --resume, or set load_from to a checkpoint to resume from.')
    why = (f'{save_file} is missing, empty or unreadable'
           if recorded is None else f'{save_file} names {recorded}, which ' +
           ('is missing or incomplete'
            if not recorded_ok else 'is numbered below another complete checkpoint'))
    print_log(
        f'--resume: {why}; resuming from the highest-numbered complete checkpoint '
        f'{newest} instead.',
        logger='current',
        level=logging.WARNING)
    return newest


def _numbered_above(path: str, recorded: str, filename_tmpl: str) -> bool:
    """Whether checkpoint ``path``'s N is above ``recorded``'s; a ``recorded`` name without N
    (set by hand, a best checkpoint) is trusted."""
    step = checkpoint_step(path, filename_tmpl)
    recorded_step = checkpoint_step(recorded, filename_tmpl)
    return step is not None and recorded_step is not None and step > recorded_step
