"""The one missing-file check of a data list.

:func:`missing_files` lists the images and labels a dataset's list names that do not exist and
:func:`describe_missing` words them. Their users: :class:`~.voc.FCNVOCDataset` and
:class:`~.custom.CustomSegDataset` raise at build time (unless built with ``check_files=False``),
:class:`~.validated_dataset.ValidatedDataset` raises or drops the samples, and
``tools/check_dataset.py`` builds the dataset with ``check_files=False`` and lists every
missing file. :func:`file_problem` says why a path is not a readable file: not found, a folder,
a broken symlink, a symlink loop (``os.path.exists`` is ``False`` on a loop too), no permission.
A dataset that lists no sample at all raises :class:`NoSamplesError`.
"""
import errno
import os
import os.path as osp
import stat
from typing import Iterable, List, Optional, Sequence, Tuple, Union

PATH_KEYS = ('img_path', 'seg_map_path')


class NoSamplesError(FileNotFoundError):
    """A dataset lists no sample: its split file (``ann_file``) is empty or holds only blank
    lines, or its image folder holds no image with the suffix. A ``FileNotFoundError`` (no
    file to train on), of ``fcn_plugin``: the tools end with it as one line naming the file."""


def lists_nothing(path: str) -> bool:
    """Whether the split file ``path`` exists and holds no name (only blank lines, or nothing):
    read up to its first name."""
    try:
        with open(path) as f:
            return not any(line.strip() for line in f)
    except (OSError, UnicodeDecodeError):  # unreadable: the dataset says why
        return False


def sample_paths(info: dict, keys: Sequence[str] = PATH_KEYS) -> List[str]:
    """The files (image, label) of one data-list entry, those that are set."""
    return [info[k] for k in keys if info.get(k)]


def file_problem(path: str) -> Optional[str]:
    """Why ``path`` is not a regular file that can be opened (``None``: it is one)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        if error.errno == errno.ELOOP:
            return ('symlink loop (the link resolves back to itself, ELOOP): point it at the '
                    'real file or replace it with the file')
        if error.errno == errno.ENOENT and os.path.islink(path):
            return f'broken symlink (its target {os.readlink(path)} does not exist)'
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            return 'file not found'
        return f'cannot be read ({error.strerror or error})'
    if stat.S_ISDIR(mode):
        return 'file not found (a folder)'
    if not stat.S_ISREG(mode):
        return 'not a regular file (a pipe, socket or device)'
    if not os.access(path, os.R_OK):
        return 'cannot be read (permission denied)'
    return None


def missing_files(infos: Iterable[dict], keys: Sequence[str] = PATH_KEYS) -> List[Tuple[int, str]]:
    """``(index, path)`` of every file named by ``infos`` (a data list, in order; ``keys``: which
    paths of each entry) that is not an existing, readable file (:func:`file_problem`)."""
    return [(i, path) for i, info in enumerate(infos) for path in sample_paths(info, keys)
            if file_problem(path)]


def describe_missing(missing: Sequence[Tuple[int, str]], listed_by: str, shown: int = 5) -> str:
    """``'N file(s) listed by <listed_by> are missing: a; b (symlink loop ...); ...'`` (the first
    ``shown``, each with its problem unless it is simply not found)."""
    names = '; '.join(with_problem(p)
                      for _, p in missing[:shown]) + ('; ...' if len(missing) > shown else '')
    return f'{len(missing)} file(s) listed by {listed_by} are missing: {names}'


def with_problem(path: str) -> str:
    """``path``, followed by its problem in brackets unless it is simply not found."""
    problem = file_problem(path)
    return path if problem in (None, 'file not found') else f'{path} ({problem})'


def command_text(command: Union[str, Sequence[str], None]) -> Optional[str]:
    """A ``prepare_cmd`` as one line: a list of parts is joined by spaces (configs write long
    commands as lists: mmengine formats a config's text with yapf, slowly on long strings)."""
    if command is None or isinstance(command, str):
        return command
    return ' '.join(command)


def prepare_hint(command: Optional[str], data_root: Optional[str]) -> Optional[str]:
    """``command`` (a dataset's ``prepare_cmd``) if it writes ``data_root``: it names that
    folder, a path inside it or a folder holding it; else None. A child config that points
    an inherited dataset at its own data keeps the parent's command, which would write the
    parent's data (the toy generator for a user's own folder)."""
    if not command or not data_root:
        return None
    root = osp.realpath(data_root)  # data/ is often a link to where the data lives
    for token in command.split():
        path = osp.realpath(token)
        if os.sep in token and (path == root or path.startswith(root + os.sep)
                                or root.startswith(path + os.sep)):
            return command
    return None
