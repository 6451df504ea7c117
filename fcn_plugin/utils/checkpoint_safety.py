"""Load checkpoints with ``torch.load(weights_only=True)``, torch's default since 2.6, and say
clearly why a file was refused.

A checkpoint written by mmengine 0.10.7's runner holds, besides tensors and plain containers,
the message hub's ``HistoryBuffer`` objects (logged scalars, as numpy arrays) and numpy scalars
in its meta data. The weights-only unpickler refuses any class it was not told about, so resume,
test and ``mmseg.apis.init_model`` fail on such checkpoints. Instead of turning weights-only off
(which lets a crafted checkpoint run arbitrary code), :func:`register_checkpoint_safe_globals`
(called when ``fcn_plugin`` is imported) allowlists exactly those classes: they are data
containers whose unpickling calls no user code. It only adds to torch's allowlist; mmengine's
loaders are left as they are, so every mmengine load (resume, test, ``load_from``,
``init_cfg=dict(type='Pretrained')``, ``mmseg.apis.init_model``) is weights-only through
torch's default, unless the environment sets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``.

The tools (``tools/train.py``, ``test.py``, ``infer.py``) also call
:func:`install_safe_checkpoint_loaders`, which re-registers mmengine's checkpoint loaders
(``CheckpointLoader``, the one place every mmengine load goes through) so that they are
weights-only even under that variable:

- the local-file loader (prefix ``''``) as :func:`load_from_local`, which passes
  ``weights_only=True`` explicitly (an explicit ``True`` cannot be overridden by that variable);
- every other registered scheme (http, open-mmlab://, ...) wrapped so that, while it runs,
  ``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`` forces weights-only on the ``torch.load`` it calls;

and both turn torch's long unpickling error into :class:`UnsafeCheckpointError` naming the file
and the refused global, and a truncated or damaged file into :class:`CorruptCheckpointError`
(never torch's advice to re-run with ``weights_only=False``). The local loader also refuses,
before reading any data, an archive declaring more than the file holds (a zip bomb) and a file
holding no dict (:mod:`.checkpoint_archive`). Nothing is
unpickled before the refusal: the weights-only unpickler rejects the global when it reads the
``GLOBAL`` opcode, before any call. The converters (``tools/model_converters``) load with
:func:`load_weights_only` (also ``fcn_plugin.utils.io.load_weights_only``).
"""
import contextlib
import os
import os.path as osp
import pickle
import re
import sys
from collections.abc import Mapping
from typing import Callable

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from .checkpoint_archive import check_archive, not_a_checkpoint
from .checkpoint_fit import remember_source
from .checkpoint_path import require_checkpoint_file


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
    dtype_classes = [
        type(np.dtype(t)) for t in (np.float64, np.float32, np.float16, np.int64, np.int32,
                                    np.int16, np.int8, np.uint8, np.bool_)
    ]
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
    """Add :func:`checkpoint_safe_globals` to torch's weights-only allowlist (idempotent; called
    when ``fcn_plugin`` is imported). Registries and mmengine's loaders are left untouched."""
    torch.serialization.add_safe_globals(checkpoint_safe_globals())


def _refused_global(message: str) -> str:
    match = re.search(r'GLOBAL (\S+)', message) or re.search(
        r'(?:unrecognized function|allowlisted via `add_safe_globals`,? but got) (.+?)(?: which|$)',
        message, re.M)
    return match.group(1).strip() if match else 'a non-allowlisted object'


# Weights-only failures that mean "this file would run code"; every other one is a damaged file.
UNSAFE = ('Unsupported global', 'is blocked', 'unrecognized function', 'Can only create new '
          'object', 'Can only build')


def _first_line(message: str, error: BaseException) -> str:
    """The unpickler's own reason, without torch's advice around it."""
    reason = message.split('WeightsUnpickler error:')[-1].strip()
    reason = reason.split('Check the documentation of torch.load')[0].strip()
    lines = [
        ln for ln in reason.splitlines()
        if ln.strip() and 'weights_only' not in ln and 'Weights only load' not in ln
    ]
    return (lines[0].strip() if lines else type(error).__name__)[:300]


def _translate(filename: str, error: BaseException, what: str = 'checkpoint') -> BaseException:
    """A short, actionable error for a failed weights-only load of ``filename``; never torch's
    advice to load with ``weights_only=False``."""
    message = str(error)
    name = f'{what[:1].upper()}{what[1:]} {filename}'
    if isinstance(error, pickle.UnpicklingError) and 'Weights only load failed' in message \
            and any(marker in message for marker in UNSAFE):
        return UnsafeCheckpointError(
            f'Refused to load {what} {filename}: unpickling it would call '
            f'{_refused_global(message)}, which is not on the weights-only allowlist, so the '
            'file could run arbitrary code (nothing was executed). Only load checkpoints from '
            'sources you trust; a checkpoint that holds only tensors and plain data loads as is. '
            'If you trust this file and the class is a pure data container, allowlist it with '
            'torch.serialization.add_safe_globals([...]) before loading.')
    if isinstance(error, RuntimeError) and 'TorchScript' in message:
        return CorruptCheckpointError(
            f'{name} is a TorchScript archive (torch.jit.save), not a checkpoint: load it with '
            'torch.jit.load, or save the model\'s state_dict() instead.')
    if isinstance(error, (EOFError, pickle.UnpicklingError, ValueError,
                          TypeError)) or (isinstance(error, RuntimeError) and re.search(
                              r'zip archive|central directory|PytorchStreamReader|invalid header|'
                              r'weights_only', message)):
        return CorruptCheckpointError(
            f'{name} is truncated, damaged or not a PyTorch checkpoint '
            f'({_first_line(message, error)}); this is not a code-execution attempt, the file is '
            'unreadable. If it was being written when a run was killed, resume from an earlier '
            'checkpoint.')
    return error


@contextlib.contextmanager
def _named_errors(filename: str, what: str = 'checkpoint'):
    """Raise :func:`_translate`'s error instead of torch's for a failed load in the block."""
    try:
        yield
    except (pickle.UnpicklingError, EOFError, RuntimeError) as error:
        translated = _translate(filename, error, what)
        if translated is error:
            raise
        raise translated from None  # torch's message would advise weights_only=False


def load_weights_only(filename: str, what: str = 'checkpoint', map_location='cpu'):
    """``torch.load(filename, weights_only=True)``; a missing, unsafe or truncated file raises
    ``FileNotFoundError``, :class:`UnsafeCheckpointError` or :class:`CorruptCheckpointError`
    naming it (``what`` says what the file is, e.g. ``'VGG checkpoint'``).

    Before loading, :func:`~.checkpoint_archive.check_archive` reads the zip directory and the
    pickle's first bytes: an archive declaring more data than the file holds (a zip bomb) and a
    file holding no dict (``torch.save(tensor)``) are refused without reading their data, so
    memory stays about the file's size. The one weights-only load of the package: mmengine's
    local loader (:func:`load_from_local`) and the converters use it.
    """
    filename = osp.expanduser(str(filename))
    if osp.isdir(filename):
        require_checkpoint_file(filename, what)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{what[:1].upper()}{what[1:]} {filename} can not be found.')
    try:
        check_archive(filename, what)
    except (TypeError, ValueError) as error:
        raise CorruptCheckpointError(str(error)) from None
    with _named_errors(filename, what):
        checkpoint = torch.load(filename, map_location=map_location, weights_only=True)
    if not isinstance(checkpoint, Mapping):
        raise CorruptCheckpointError(not_a_checkpoint(filename, type(checkpoint).__name__, what))
    remember_source(checkpoint, filename)
    return checkpoint


@contextlib.contextmanager
def refuse_unloadable():
    """For command-line tools: a missing, unsafe or damaged checkpoint ends the program with its
    one-line error (exit status 1) instead of a traceback."""
    try:
        yield
    except (FileNotFoundError, UnsafeCheckpointError, CorruptCheckpointError) as error:
        sys.exit(f'{type(error).__name__}: {error}')


def load_from_local(filename: str, map_location=None):
    """mmengine's local-file checkpoint loader, with ``weights_only=True`` made explicit.

    The name is mmengine's (its log line prints ``__name__[10:]``, "local").
    """
    return load_weights_only(filename, map_location=map_location)


@contextlib.contextmanager
def _weights_only_forced():
    """Make every ``torch.load`` in the block weights-only, whatever its callsite passes."""
    saved = {
        k: os.environ.get(k)
        for k in ('TORCH_FORCE_WEIGHTS_ONLY_LOAD', 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')
    }
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
        with _named_errors(filename), _weights_only_forced():
            return loader(filename, map_location, *args, **kwargs)

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
