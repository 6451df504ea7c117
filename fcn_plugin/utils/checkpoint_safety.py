"""Load mmengine checkpoints with ``torch.load(weights_only=True)``, torch's default since 2.6.

A checkpoint written by mmengine 0.10.7's runner holds, besides tensors and plain containers,
the message hub's ``HistoryBuffer`` objects (logged scalars, as numpy arrays) and numpy scalars
in its meta data. The weights-only unpickler refuses any class it was not told about, so resume,
test and ``mmseg.apis.init_model`` fail on such checkpoints. Instead of turning weights-only off
(which lets a crafted checkpoint run arbitrary code), we allowlist exactly those classes: they
are data containers whose unpickling calls no user code.

Every checkpoint mmengine loads goes through one place, ``CheckpointLoader.load_checkpoint``
(``runner/checkpoint.py``): resume, test, ``load_from``, ``init_cfg=dict(type='Pretrained')``
and ``mmseg.apis.init_model`` all call ``_load_checkpoint`` -> ``CheckpointLoader``, which picks
a loader by the path's prefix. mmengine 0.10.7's loaders call ``torch.load(filename,
map_location=...)`` without ``weights_only``, i.e. they rely on torch's default, which the
environment variable ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` turns off. The least invasive
robust fix is therefore at that registry, not a patch of ``torch.load`` or of the runner:
:func:`install_safe_checkpoint_loaders` re-registers (``force=True``)

- the local-file loader (prefix ``''``) as :func:`load_from_local`, which passes
  ``weights_only=True`` explicitly (an explicit ``True`` cannot be overridden by that variable);
- every other registered scheme (http, open-mmlab://, ...) wrapped so that, while it runs,
  ``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`` forces weights-only on the ``torch.load`` it calls;

and both turn torch's long unpickling error into :class:`UnsafeCheckpointError` naming the file
and the refused global, and a truncated file into :class:`CorruptCheckpointError`. Nothing is
unpickled before the refusal: the weights-only unpickler rejects the global when it reads the
``GLOBAL`` opcode, before any call. Our converters use :func:`fcn_plugin.utils.io.load_weights_only`
(explicit ``weights_only=True`` as well).
"""
import contextlib
import os
import os.path as osp
import pickle
import re
from typing import Callable

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs code outside the weights-only allowlist to unpickle; refused."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is truncated or not a PyTorch checkpoint."""


def history_buffer_method(owner, name: str):
    """Stands in for ``builtins.getattr`` when unpickling, for ``HistoryBuffer``'s methods only.

    ``HistoryBuffer.__getstate__`` saves its statistics methods (``min``, ``max``, ``current``,
    ``mean``), which pickle as ``getattr(HistoryBuffer, 'min')``. Allowlisting ``getattr`` itself
    would let a crafted file reach any attribute of any allowed object (and from there ``os``);
    this accepts exactly those four lookups and refuses everything else.
    """
    if owner is HistoryBuffer and name in ('min', 'max', 'current', 'mean'):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'refused getattr({owner!r}, {name!r}) in a checkpoint: only '
                                 "HistoryBuffer's statistics methods are allowed")


def checkpoint_safe_globals() -> list:
    """The classes and reconstructors an mmengine checkpoint needs beyond torch's defaults."""
    dtype_classes = [type(np.dtype(t)) for t in (
        np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8, np.uint8,
        np.bool_)]
    return [
        HistoryBuffer,
        (history_buffer_method, 'builtins.getattr'),
        np.core.multiarray._reconstruct,
        np.core.multiarray.scalar,
        np.ndarray,
        np.dtype,
        *dtype_classes,
    ]


def register_checkpoint_safe_globals() -> None:
    """Allowlist :func:`checkpoint_safe_globals` and route mmengine's loads through
    :func:`install_safe_checkpoint_loaders` (idempotent; called when ``fcn_plugin`` is imported).
    """
    torch.serialization.add_safe_globals(checkpoint_safe_globals())
    install_safe_checkpoint_loaders()


def _refused_global(message: str) -> str:
    match = re.search(r'GLOBAL (\S+)', message) or re.search(r'Unsupported global: (\S+)',
                                                             message)
    return match.group(1) if match else 'a non-allowlisted object'


def _translate(filename: str, error: BaseException) -> BaseException:
    """A short, actionable error for a failed weights-only load of ``filename``."""
    message = str(error)
    if isinstance(error, pickle.UnpicklingError) and 'Weights only load failed' in message:
        return UnsafeCheckpointError(
            f'Refused to load checkpoint {filename}: unpickling it would call '
            f'{_refused_global(message)}, which is not on the weights-only allowlist, so the '
            'file could run arbitrary code (nothing was executed). Only load checkpoints from '
            'sources you trust; a checkpoint that holds only tensors and plain data loads as is. '
            'If you trust this file and the class is a pure data container, allowlist it with '
            'torch.serialization.add_safe_globals([...]) before loading.')
    if isinstance(error, (EOFError, pickle.UnpicklingError)) or (
            isinstance(error, RuntimeError) and
            re.search(r'zip archive|central directory|PytorchStreamReader|invalid header',
                      message)):
        first = message.strip().split('. ')[0] if message.strip() else type(error).__name__
        return CorruptCheckpointError(
            f'Checkpoint {filename} is truncated or not a PyTorch checkpoint ({first}). If it '
            'was being written when a run was killed, resume from an earlier checkpoint.')
    return error


def safe_torch_load(filename: str, map_location=None):
    """``torch.load(filename, weights_only=True)`` with clear errors naming the file."""
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError) as error:
        translated = _translate(filename, error)
        if translated is error:
            raise
        raise translated from error


def load_from_local(filename: str, map_location=None):
    """mmengine's local-file checkpoint loader, with ``weights_only=True`` made explicit.

    The name is mmengine's (its log line prints ``__name__[10:]``, "local").
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint {filename} can not be found.')
    return safe_torch_load(filename, map_location=map_location)


@contextlib.contextmanager
def _weights_only_forced():
    """Make every ``torch.load`` in the block weights-only, whatever its callsite passes."""
    saved = {k: os.environ.get(k) for k in ('TORCH_FORCE_WEIGHTS_ONLY_LOAD',
                                             'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')}
    os.environ.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    os.environ['TORCH_FORCE_WEIGHTS_ONLY_LOAD'] = '1'
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _safe_scheme(loader: Callable) -> Callable:
    def safe_loader(filename, map_location=None, *args, **kwargs):
        try:
            with _weights_only_forced():
                return loader(filename, map_location, *args, **kwargs)
        except (pickle.UnpicklingError, EOFError, RuntimeError) as error:
            translated = _translate(filename, error)
            if translated is error:
                raise
            raise translated from error

    safe_loader.__name__ = loader.__name__  # mmengine logs __name__[10:] as the backend
    safe_loader.__doc__ = loader.__doc__
    safe_loader._fcn_safe = True
    return safe_loader


def install_safe_checkpoint_loaders() -> None:
    """Re-register mmengine's checkpoint loaders with weights-only semantics (idempotent).

    Schemes registered by other packages after this call are not covered; they still get
    torch's weights-only default.
    """
    for prefix, loader in list(CheckpointLoader._schemes.items()):
        if getattr(loader, '_fcn_safe', False):
            continue
        if prefix == '':
            safe = load_from_local
        else:
            safe = _safe_scheme(loader)
        CheckpointLoader.register_scheme(prefix, safe, force=True)


load_from_local._fcn_safe = True
