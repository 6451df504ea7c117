"""File writes that are complete or absent: every file the plugin and its tools write goes
through :func:`atomic_write` (checkpoints, label PNGs, converted images, ``last_checkpoint``)."""
import contextlib
import os
import os.path as osp
import uuid
from typing import Iterator

import torch

from .checkpoint_safety import load_weights_only  # noqa: F401  (the converters' loader)


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
    tmp = osp.join(directory, f'.{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}'
                   f'{osp.splitext(name)[1]}')
    # created as open() would (mode 0666 less the umask), exclusively: never someone else's file
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
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
