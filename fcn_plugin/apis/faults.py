"""The tools of :func:`~fcn_plugin.apis.fault_suite.fault_injection`: running a tool as a
subprocess (kill it on a condition; its exit status, wall time and peak RSS), finding processes
in ``/proc``, and the hostile files: a checkpoint that runs code when unpickled, a zip bomb in
``torch.save``'s format, a PNG decompression bomb, one bad sample in a VOC-layout folder
(:data:`DATA_FAULTS`)."""
import os
import os.path as osp
import signal
import struct
import subprocess
import time
import zipfile
import zlib

import numpy as np
import torch
from PIL import Image

from ..utils.label_png import save_label_png


# ----------------------------------------------------------------------------------- processes
class Tail:
    """The growing text of a file, read incrementally."""

    def __init__(self, path):
        self.path, self.text, self._pos = path, '', 0

    def read(self):
        with open(self.path, 'rb') as f:
            f.seek(self._pos)
            data = f.read()
        self._pos += len(data)
        self.text += data.decode(errors='replace')
        return self.text


def run(cmd, log, env, cwd=None, timeout=300, kill_when=None, signals=()) -> dict:
    """Run ``cmd`` with stdout/stderr to ``log``.out/.err; SIGKILL it when ``kill_when(tail)``
    (tail: a :class:`Tail` of stdout; polled every 2 ms) turns true, or at ``timeout`` s.
    ``signals``: ``(when, signum, group)`` sent in order, each once its ``when(tail)`` turns
    true; ``group``: to the tool's process group, as a terminal's Ctrl-C (the tool then runs in
    a session of its own), else to the process, as ``kill``.

    Returns rc (negative: the signal), seconds, peak_mib (``wait4``'s ``ru_maxrss``: the
    largest of the process and its reaped descendants), out, err, last (the last non-empty
    stderr line, else stdout's), killed (seconds at the kill, 'timeout' or None) and sent
    (seconds at which each of ``signals`` was sent)."""
    t0 = time.monotonic()
    with open(log + '.out', 'w') as out, open(log + '.err', 'w') as err:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdout=out,
            stderr=err,
            env=env,
            start_new_session=bool(signals),
            preexec_fn=_as_in_a_terminal if signals else None)
    tail, killed, pending, sent = Tail(log + '.out'), None, list(signals), []
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if pending and pending[0][0](tail):
                _, signum, group = pending.pop(0)
                try:
                    (os.killpg if group else os.kill)(proc.pid, signum)
                except ProcessLookupError:  # it ended meanwhile; reaped next round
                    pass
                sent.append(round(time.monotonic() - t0, 2))
            late = time.monotonic() - t0 > timeout
            if killed is None and (late or (kill_when is not None and kill_when(tail))):
                os.kill(proc.pid, signal.SIGKILL)
                killed = 'timeout' if late else round(time.monotonic() - t0, 2)
            time.sleep(0.002)
    except BaseException:  # an error in kill_when, Ctrl-C: no orphan is left training
        proc.kill()
        proc.wait()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = Tail(log + '.err').read()
    lines = [ln.strip() for ln in (err or tail.read()).splitlines() if ln.strip()]
    return dict(
        rc=proc.returncode,
        seconds=round(time.monotonic() - t0, 2),
        peak_mib=round(usage.ru_maxrss / 1024),
        out=tail.read(),
        err=err,
        last=lines[-1] if lines else '',
        killed=killed,
        sent=sent)


def _as_in_a_terminal():
    """SIGINT as a program started from a terminal gets it (Python's KeyboardInterrupt), also
    when this process runs in the background, where a shell starts it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def alive(pid):
    """(whether ``pid`` runs and is no zombie, its parent pid)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except OSError:
        return False, None
    return fields[0] not in 'ZX', int(fields[1])


def children(pid):
    """The pids of ``pid``'s running children, oldest first (as a rule, by pid)."""
    return sorted(int(p) for p in os.listdir('/proc') if p.isdigit() and alive(p)[1] == pid)


def wait_until(condition, seconds, step=0.1):
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        time.sleep(step)
    return condition()


# ------------------------------------------------------------------------------- hostile files
DATA_FAULTS = ('missing image', 'truncated JPEG', 'corrupt PNG', 'label out of range',
               'colour label', 'size mismatch', 'decompression-bomb PNG as .jpg', 'symlink loop')


class _Exec:
    """Unpickles as ``exec(code)``."""

    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return exec, (self.code, )


def make_pickle_bomb(path: str, marker: str) -> None:
    """A checkpoint that writes ``marker`` if it is ever unpickled without weights_only."""
    torch.save({'state_dict': {}, 'meta': _Exec(f'open({marker!r}, "w").write("code ran")')}, path)


def make_zip_bomb(path: str, size: int = 2 << 30) -> None:
    """A ``torch.save``-like zip whose ``data.pkl`` deflates to ``size`` bytes of zeros (about
    size/1000 on disk), written 1 MiB at a time."""
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as archive:
        archive.writestr('archive/version', '3\n')
        archive.writestr('archive/byteorder', 'little')
        with archive.open('archive/data.pkl', 'w', force_zip64=True) as f:
            piece = bytes(1 << 20)
            for _ in range(size >> 20):
                f.write(piece)


def _chunk(tag, data):
    return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data))


def make_png_bomb(path: str, side: int = 30000) -> None:
    """A valid 8-bit RGB PNG of side x side pixels (2.7 GB decoded at 30000) whose IDAT is zlib
    of zeros (2.6 MB), compressed row by row."""
    comp, row = zlib.compressobj(9), bytes(1 + 3 * side)
    idat = b''.join(comp.compress(row) for _ in range(side)) + comp.flush()
    header = struct.pack('>IIBBBBB', side, side, 8, 2, 0, 0, 0)
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + _chunk(b'IHDR', header) + _chunk(b'IDAT', idat) +
                _chunk(b'IEND', b''))


def corrupt_sample(root: str, fault: str, bomb_side: int = 30000) -> str:
    """Make the first train sample of a VOC-layout folder bad (``fault``: one of
    :data:`DATA_FAULTS`); returns the bad file's path."""
    with open(osp.join(root, 'ImageSets', 'Segmentation', 'train.txt')) as f:
        name = f.read().split()[0]
    img = osp.join(root, 'JPEGImages', name + '.jpg')
    label = osp.join(root, 'SegmentationClass', name + '.png')
    if fault in ('missing image', 'symlink loop', 'decompression-bomb PNG as .jpg'):
        os.remove(img)
        if fault == 'symlink loop':  # x.jpg -> x.jpg.loop -> x.jpg
            os.symlink(osp.basename(img) + '.loop', img)
            os.symlink(osp.basename(img), img + '.loop')
        elif fault.startswith('decompression'):
            make_png_bomb(img, bomb_side)
        return img
    if fault in ('truncated JPEG', 'corrupt PNG'):
        path = img if fault == 'truncated JPEG' else label
        with open(path, 'rb') as f:
            data = bytearray(f.read())
        if fault == 'truncated JPEG':
            data = data[:len(data) // 2]
        else:  # 32 bytes overwritten mid-stream: the CRC and the zlib stream break
            data[len(data) // 2:len(data) // 2 + 32] = bytes(range(32))
        with open(path, 'wb') as f:
            f.write(data)
        return path
    array = np.array(Image.open(label))
    if fault == 'label out of range':
        array[:4, :4] = 9  # the toy data has 6 classes
        save_label_png(array, label)
    elif fault == 'colour label':
        Image.fromarray(np.stack([array * 40] * 3, -1)).save(label)
    elif fault == 'size mismatch':
        save_label_png(np.pad(array, ((0, 5), (0, 7))), label)
    else:
        raise ValueError(f'unknown data fault {fault!r}')
    return label
