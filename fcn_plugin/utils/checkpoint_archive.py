"""Look at a ``torch.save`` file before loading it: refuse what would take unbounded memory.

``torch.save`` writes a zip archive of *stored* (uncompressed) entries: ``<name>/data.pkl`` (the
pickle) and one entry per tensor storage. ``torch.load`` allocates each entry at the size the
zip's central directory declares and inflates compressed ones, so a 2 MB archive whose
``data.pkl`` deflates to 2 GiB costs 2 GiB of memory before the weights-only unpickler sees the
first byte. :func:`check_archive` reads only the central directory (:mod:`zipfile`, no data)
and refuses sizes a file of this size cannot hold, then reads the first bytes of the pickle to
learn the top-level object: a checkpoint is a dict (mmengine's, or a state dict); a file
holding one tensor (``torch.save(tensor)``) is refused before its storage is read.
Legacy (pre-1.6, non-zip) files are left to ``torch.load``.
"""
import io
import os
import pickletools
import zipfile
from typing import Optional

# Declared (uncompressed) sizes may add up to at most max(RATIO x the file, file + SLACK):
# torch.save's entries are stored, so a real checkpoint declares about its own size.
RATIO = 4
SLACK = 64 * 2**20
MAPPINGS = ('dict', 'collections.OrderedDict', 'collections.defaultdict')


def _gib(size: int) -> str:
    return f'{size / 2**30:.2f} GiB' if size >= 2**28 else f'{size / 2**20:.1f} MiB'


def _top_level(head: bytes) -> Optional[str]:
    """The top-level object a pickle starts building, from its first opcodes: ``'dict'``,
    ``'list'``, ``'tuple'``, a ``'module.name'`` it calls, or ``None`` if it cannot tell."""
    strings = []
    try:
        for opcode, arg, _ in pickletools.genops(io.BytesIO(head)):
            name = opcode.name
            if name in ('PROTO', 'FRAME', 'MEMOIZE') or name.endswith('PUT'):
                continue
            if name in ('EMPTY_DICT', 'DICT'):
                return 'dict'
            if name in ('EMPTY_LIST', 'LIST'):
                return 'list'
            if name.startswith('EMPTY_TUPLE') or name.startswith('TUPLE'):
                return 'tuple'
            if name == 'GLOBAL':
                return arg.replace(' ', '.')
            if name.endswith('UNICODE') or name.endswith('STRING'):
                strings.append(arg)
                continue
            if name == 'STACK_GLOBAL' and len(strings) >= 2:
                return f'{strings[-2]}.{strings[-1]}'
            return None
    except Exception:  # the head ends mid-opcode, or it is not a pickle: torch.load will say
        return None
    return None


def describe(kind: str) -> str:
    if kind.startswith('torch._utils._rebuild_tensor') or kind.startswith(
            'torch._utils._rebuild_parameter') or kind == 'torch.nn.parameter.Parameter':
        return 'a single tensor (torch.save(tensor))'
    return f'a {kind}'


def not_a_checkpoint(filename: str, kind: str, what: str = 'checkpoint') -> str:
    return (f'{what[:1].upper()}{what[1:]} {filename} holds {describe(kind)}, not a checkpoint: '
            "a checkpoint is a dict, mmengine's {'state_dict': ..., 'meta': ...} or a state dict "
            "(torch.save(model.state_dict(), path)); nothing was loaded.")


def check_archive(filename: str, what: str = 'checkpoint') -> None:
    """Raise ``ValueError`` if the zip at ``filename`` declares more data than the file can hold,
    ``TypeError`` if it holds no checkpoint dict (both naming the file and the reason); does
    nothing for a non-zip file."""
    if not zipfile.is_zipfile(filename):
        return
    refused = f'{what[:1].upper()}{what[1:]} {filename} is refused:'
    size = os.path.getsize(filename)
    try:
        archive = zipfile.ZipFile(filename)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ValueError(f'{refused} its zip directory is unreadable ({error})') from None
    with archive:
        infos = archive.infolist()
        declared = sum(i.file_size for i in infos)
        for info in infos:
            if info.header_offset + info.compress_size > size or (
                    info.compress_type == zipfile.ZIP_STORED
                    and info.file_size != info.compress_size):
                raise ValueError(f'{refused} entry {info.filename} declares '
                                 f'{_gib(info.file_size)} that the file ({_gib(size)}) does not '
                                 'hold: a damaged archive.')
        if declared > max(RATIO * size, size + SLACK):
            raise ValueError(
                f'{refused} its entries declare {_gib(declared)} of data in a {_gib(size)} file '
                '(torch.save writes them uncompressed): a zip bomb or a damaged archive, refused '
                'before inflating anything.')
        if any(i.filename.endswith('/constants.pkl') for i in infos):
            raise TypeError(f'{refused} it is a TorchScript archive (torch.jit.save), not a '
                            "checkpoint: load it with torch.jit.load, or save the model's "
                            'state_dict() instead.')
        pickles = [i for i in infos if i.filename.endswith('/data.pkl')]
        if not pickles:
            return  # not torch.save's layout: torch.load will say
        with archive.open(pickles[0]) as stream:
            kind = _top_level(stream.read(4096))
    if kind is not None and kind not in MAPPINGS:
        raise TypeError(not_a_checkpoint(filename, kind, what))
