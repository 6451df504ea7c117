"""Write failures for fault injection, loaded by a tool run with this folder first on
``PYTHONPATH`` (Python imports ``sitecustomize`` at start-up): writing or creating a file
fails as a full disk or a read-only file system makes it fail, without needing either.

- ``FCN_FAULT_ENOSPC``: ``fnmatch`` patterns (separated by ``:``) of paths; opening a matching
  path for writing raises ``OSError(ENOSPC)``.
- ``FCN_FAULT_EROFS``: a folder; creating or opening for writing anything inside it (or it)
  raises ``OSError(EROFS)``, as chmod would for a user other than root.

Only ``open``/``io.open``/``os.open``/``os.mkdir`` are wrapped: what Python code writes
(PIL, matplotlib, json logs, ``torch.save`` to a path, ``os.makedirs``)."""
import builtins
import errno
import fnmatch
import io
import os

_FULL = [p for p in os.environ.get('FCN_FAULT_ENOSPC', '').split(':') if p]
_READ_ONLY = os.environ.get('FCN_FAULT_EROFS')
_open, _os_open, _mkdir = builtins.open, os.open, os.mkdir


def _check(path, writing):
    if not writing or not isinstance(path, (str, bytes, os.PathLike)):
        return
    path = os.path.abspath(os.fsdecode(path))
    if any(fnmatch.fnmatch(path, p) for p in _FULL):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    if _READ_ONLY and (path + os.sep).startswith(os.path.abspath(_READ_ONLY) + os.sep):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)


def _faulty_open(file, mode='r', *args, **kwargs):
    _check(file, any(c in mode for c in 'wax+'))
    return _open(file, mode, *args, **kwargs)


def _faulty_os_open(path, flags, *args, **kwargs):
    _check(path, flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
    return _os_open(path, flags, *args, **kwargs)


def _faulty_mkdir(path, *args, **kwargs):
    _check(path, True)
    return _mkdir(path, *args, **kwargs)


if _FULL or _READ_ONLY:
    builtins.open = io.open = _faulty_open
    os.open, os.mkdir = _faulty_os_open, _faulty_mkdir
