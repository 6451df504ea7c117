"""Hostile checkpoint files are refused with bounded memory, and the message says what they are:
a zip bomb (an archive declaring gigabytes in a small file) and a file holding one huge tensor
are refused before their data is read; a damaged pickle is not called a code-execution attempt;
the converters print the same errors, never torch's advice to load with weights_only=False."""
import io
import os
import struct
import subprocess
import sys
import zipfile
import zlib

import pytest
import torch

from fcn_plugin.utils.checkpoint_safety import CorruptCheckpointError, UnsafeCheckpointError
from fcn_plugin.utils.io import load_weights_only

# Loads each FILE in a fresh process the way the tools do (mmengine's loader after
# install_safe_checkpoint_loaders) and prints the error and the growth of the peak RSS in MiB.
# VmHWM, this process's own high-water mark (ru_maxrss would include the pytest process's size:
# Linux keeps it across fork and exec), reset before each file.
MEASURE = '''
import sys
import fcn_plugin
from fcn_plugin.utils.checkpoint_safety import install_safe_checkpoint_loaders
from mmengine.runner.checkpoint import _load_checkpoint
install_safe_checkpoint_loaders()
def kib(field):
    return int([l for l in open('/proc/self/status') if l.startswith(field + ':')][0].split()[1])
for path in sys.argv[1:]:
    open('/proc/self/clear_refs', 'w').write('5')
    start = kib('VmRSS')
    try:
        _load_checkpoint(path, map_location='cpu')
        print('LOADED')
    except Exception as error:
        print(type(error).__name__, str(error).replace('\\n', ' '))
    print('PEAK_MIB', (kib('VmHWM') - start) / 1024)
'''


@pytest.fixture(scope='module')
def hostile_loads(tmp_path_factory):
    """The two hostile files below, made and loaded in one fresh process:
    ``{name: (path, error line, peak RSS growth in MiB)}``."""
    tmp = tmp_path_factory.mktemp('hostile')
    paths = dict(bomb=tmp / 'bomb.pth', tensor=tmp / 'tensor.pth')
    zip_bomb(paths['bomb'], 300 * 2**20)
    sparse_tensor_checkpoint(paths['tensor'], 2**29)
    result = subprocess.run([sys.executable, '-c', MEASURE, *map(str, paths.values())],
                            capture_output=True,
                            text=True,
                            env=dict(os.environ, OMP_NUM_THREADS='1'))
    lines = result.stdout.strip().splitlines()
    peaks = [i for i, line in enumerate(lines) if line.startswith('PEAK_MIB')]
    assert len(peaks) == 2, result.stdout + result.stderr[-3000:]
    # each PEAK_MIB line follows the error line (mmengine logs a 'Loads checkpoint' line first)
    return {
        name: (path, lines[i - 1], float(lines[i].split()[1]))
        for (name, path), i in zip(paths.items(), peaks)
    }


def zip_bomb(path, size):
    """A zip whose ``archive/data.pkl`` deflates to ``size`` zero bytes (about size/230 on
    disk), laid out as torch.save's archives."""
    with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr('archive/version', '3\n')
        with z.open('archive/data.pkl', 'w', force_zip64=True) as f:
            chunk = bytes(2**24)
            for _ in range(size // len(chunk)):
                f.write(chunk)


def sparse_tensor_checkpoint(path, numel):
    """What ``torch.save(torch.zeros(numel))`` writes, with the storage as a hole in a sparse
    file (a few KB on disk for 2 GiB)."""
    buf = io.BytesIO()
    torch.save(torch.zeros(7), buf)
    small = zipfile.ZipFile(buf)
    n = struct.pack('<i', numel)
    pkl = small.read('archive/data.pkl').replace(b'cpuq\x04K\x07t', b'cpuq\x04J' + n + b't')
    pkl = pkl.replace(b'K\x00K\x07\x85', b'K\x00J' + n + b'\x85')
    size, crc, chunk = 4 * numel, 0, bytes(2**24)
    for _ in range(size // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    entries = [(i.filename, small.read(i.filename)) for i in small.infolist()]
    entries = [(name, pkl if name.endswith('data.pkl') else
                (size, crc) if name.endswith('data/0') else data) for name, data in entries]
    central = b''
    with open(path, 'wb') as f:
        for name, data in entries:
            offset, raw = f.tell(), name.encode()
            length, crc_i = data if isinstance(data, tuple) else (len(data), zlib.crc32(data))
            f.write(
                struct.pack('<IHHHHHIIIHH', 0x04034b50, 20, 0, 0, 0, 33, crc_i, length, length,
                            len(raw), 0) + raw)
            if isinstance(data, tuple):
                f.seek(length, 1)  # a hole: nothing written, nothing on disk
            else:
                f.write(data)
            central += struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 20, 20, 0, 0, 0, 33, crc_i,
                                   length, length, len(raw), 0, 0, 0, 0, 0, offset) + raw
        start = f.tell()
        f.write(central + struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, len(entries), len(entries),
                                      len(central), start, 0))


def test_zip_bomb_is_refused_before_inflating(hostile_loads):
    """A 1.3 MB archive whose data.pkl deflates to 300 MiB (the issue's 2 MB -> 2 GiB bomb,
    scaled by 1/7: torch.load alone peaks at ~800 MiB here, ~4.3 GiB for the 2 GiB one)."""
    path, error, peak = hostile_loads['bomb']
    assert path.stat().st_size < 2 * 2**20
    assert error.startswith('CorruptCheckpointError') and 'zip bomb' in error, error
    assert str(path) in error and 'weights_only' not in error
    assert peak < 100, peak


def test_one_huge_tensor_is_refused_before_reading_it(hostile_loads):
    """torch.save(2 GiB tensor): a clear message, not KeyError 'meta', and nothing read."""
    path, error, peak = hostile_loads['tensor']
    assert path.stat().st_size > 2**31 and os.stat(path).st_blocks * 512 < 2**20  # sparse
    assert error.startswith('CorruptCheckpointError'), error
    assert 'holds a single tensor (torch.save(tensor)), not a checkpoint' in error, error
    assert peak < 100, peak


def test_small_tensor_file_gets_the_same_message(tmp_path):
    path = tmp_path / 'w.pth'
    torch.save(torch.zeros(3), path)
    with pytest.raises(CorruptCheckpointError, match='holds a single tensor'):
        load_weights_only(str(path))
    torch.save([torch.zeros(3)], path)
    with pytest.raises(CorruptCheckpointError, match='holds a list, not a checkpoint'):
        load_weights_only(str(path))


def test_damaged_pickle_is_not_called_unsafe(tmp_path):
    """A pickle the unpickler cannot parse is damage, not a code-execution attempt."""
    path = tmp_path / 'damaged.pth'
    torch.save({'state_dict': {'w': torch.zeros(3)}}, path)
    with zipfile.ZipFile(path) as z:
        entries = {i.filename: z.read(i.filename) for i in z.infolist()}
    with zipfile.ZipFile(path, 'w') as z:
        for name, data in entries.items():
            z.writestr(name,
                       data[:2] + b'}\xff\xfe' + data[5:] if name.endswith('data.pkl') else data)
    with pytest.raises(CorruptCheckpointError) as info:
        load_weights_only(str(path))
    assert 'damaged or not a PyTorch checkpoint' in str(info.value)
    assert 'weights_only' not in str(
        info.value) and not isinstance(info.value, UnsafeCheckpointError)


class _Payload:

    def __reduce__(self):
        return exec, ('pass', )


@pytest.mark.parametrize('converter', ['vgg2mmseg', 'torchfcn2mmseg'])
def test_converters_print_the_safe_errors(tmp_path, load_tool, monkeypatch, converter):
    """Every file a converter refuses gives the tools' error, one line (the tool's main, as its
    command line runs it: sys.exit(message) prints it on stderr); no advice to turn off
    weights_only (torch's message says 'Re-running torch.load with weights_only set to False'),
    even with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD set (torch reads it at each load)."""
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    tool = load_tool(f'model_converters/{converter}')
    files = {
        'unsafe.pth': ({
            'w': _Payload()
        }, 'UnsafeCheckpointError'),
        'tensor.pth': (torch.zeros(3), 'holds a single tensor'),
        'script.pth': (None, 'TorchScript archive')
    }
    if converter == 'torchfcn2mmseg':  # the same loader: one case is enough
        files = {'tensor.pth': files['tensor.pth']}
    for name, (obj, expected) in files.items():
        src = tmp_path / name
        if obj is None:
            conv = torch.jit.trace(torch.nn.Conv2d(1, 1, 1), torch.zeros(1, 1, 1, 1))
            torch.jit.save(conv, str(src))
        else:
            torch.save(obj, src)
        with pytest.raises(SystemExit) as info:
            tool.main([str(src), str(tmp_path / 'out.pth')])
        message = info.value.code
        assert isinstance(message, str) and '\n' not in message, message  # exit status 1
        assert expected in message and str(src) in message, message
        assert 'weights_only' not in message and 'Traceback' not in message
        assert not (tmp_path / 'out.pth').exists()
