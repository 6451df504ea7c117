"""File writes that are complete or absent: every file the plugin and its tools write goes
through :func:`atomic_write` (checkpoints, label PNGs, converted images, ``last_checkpoint``)."""
import contextlib
import os
import os.path as osp
import tempfile
from typing import Iterator

import torch


@contextlib.contextmanager
def atomic_write(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; once the block has written it, the file is
    fsync'ed and renamed over ``path`` (``os.replace``: atomic on POSIX and Windows).

    A crash or kill mid-write leaves the old file (or none) and a hidden ``.<name>.tmp-*`` file,
    never a truncated ``path``; an exception removes the temporary file. The temporary name
    keeps the extension, so writers that pick a format by it (PIL, mmcv) still work::

        with atomic_write('label.png') as tmp:
            Image.fromarray(label).save(tmp)
    """
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    name = osp.basename(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f'.{name}.tmp-',
                               suffix=osp.splitext(name)[1])
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through :func:`atomic_write`."""
    with atomic_write(path) as tmp:
        with open(tmp, 'w') as f:
            f.write(text)


def atomic_torch_save(obj, path: str) -> None:
    """``torch.save(obj, path)`` through :func:`atomic_write`."""
    with atomic_write(path) as tmp:
        torch.save(obj, tmp)


def load_weights_only(path: str, what: str = 'checkpoint'):
    """``torch.load(path, weights_only=True)`` on the CPU, with errors that name the file.

    A file whose unpickling would call anything outside torch's allowlist (plus the mmengine
    classes registered by :mod:`fcn_plugin.utils.checkpoint_safety`) is refused, never executed.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise RuntimeError(
            f'cannot load {what} {path}: {type(error).__name__}: {str(error).splitlines()[0]}. '
            'It is truncated, not a PyTorch checkpoint, or needs code to unpickle (refused: '
            'only tensors and plain data are loaded).') from error
