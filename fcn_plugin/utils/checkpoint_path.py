"""Why a checkpoint path given by a user is not a checkpoint file, in words that say what to do.

A work dir passed where a checkpoint is expected (``tools/test.py CONFIG work_dirs/run``) is the
common slip: :func:`checkpoint_path_problem` says it is a folder and lists the ``.pth`` files in
it, the one ``last_checkpoint`` points at first. Used by the tools, the inference and export
APIs and the weights-only loader that mmengine's ``load_checkpoint`` goes through.
"""
import glob
import os.path as osp
from typing import Optional, Type

SHOWN = 5  # .pth files named in the message


def _pointed_at(folder: str) -> Optional[str]:
    """The checkpoint ``<folder>/last_checkpoint`` names, if it is readable text."""
    try:
        with open(osp.join(folder, 'last_checkpoint'), encoding='utf-8') as f:
            target = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return target or None


def checkpoint_path_problem(path: str, what: str = 'checkpoint') -> Optional[str]:
    """``None`` if ``path`` is a file, else why not: a folder (with the ``.pth`` files it holds,
    newest first after the one ``last_checkpoint`` names) or not found."""
    path = osp.expanduser(str(path))
    if osp.isfile(path):
        return None
    if not osp.isdir(path):
        return f'{what} {path} does not exist'
    files = sorted(glob.glob(osp.join(path, '*.pth')), key=osp.getmtime, reverse=True)
    if not files:
        return (f'{what} {path} is a folder holding no .pth file: give the path of a '
                'checkpoint (.pth) file')
    last = _pointed_at(path)
    if last and osp.isfile(last):
        files = [last] + [f for f in files if osp.abspath(f) != osp.abspath(last)]
    shown = ', '.join(
        files[:SHOWN]) + (f' (and {len(files) - SHOWN} more)' if len(files) > SHOWN else '')
    latest = ' (the first is the one its last_checkpoint names)' if last else ''
    return f'{what} {path} is a folder: give one of its .pth files{latest}: {shown}'


def require_checkpoint_file(path: str,
                            what: str = 'checkpoint',
                            error: Type[Exception] = FileNotFoundError) -> None:
    """Raise ``error`` (``IsADirectoryError`` for a folder unless the caller names its own
    class) with :func:`checkpoint_path_problem`'s words if ``path`` is not a file."""
    problem = checkpoint_path_problem(path, what)
    if problem is None:
        return
    if error is FileNotFoundError and osp.isdir(osp.expanduser(str(path))):
        error = IsADirectoryError
    raise error(problem)
