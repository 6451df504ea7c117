"""Small file helpers."""
import os
import tempfile

import torch


def atomic_torch_save(obj, path: str) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place.

    A crash or kill mid-write leaves the old file (or none), never a truncated one.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp-', suffix='.pth')
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


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
