"""A distributed run ends when one of its processes cannot go on (tools/dist_train.sh, CPU).

Two jobs of 2 processes each (torchrun, gloo; started together) train the narrow FCN-8s of
tests/configs/ on a tiny dataset for "ever" (100000 iterations), and once they are training:

* one rank is frozen (SIGSTOP): with ``env_cfg.dist_cfg.timeout`` set short, the other rank's
  next collective times out and it exits non-zero within 2x the timeout, and so does the job
  (torch's default would keep it waiting 30 minutes);
* the launcher is killed (SIGKILL, no chance to clean up): its workers, which torchrun starts in
  their own sessions, end within seconds instead of training on as orphans.

Processes are found through /proc (Linux).
"""
import os
import os.path as osp
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'tests', 'configs', 'fcn8s_vgg16-narrow_tinyvoc.py')
COLLECTIVE_TIMEOUT_S = 6
START_TIMEOUT_S = 180  # 2 processes importing mmseg on a busy machine

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith('linux'), reason='finds processes through /proc')


def _stat(pid):
    """(state, ppid) of a process, or None once it is gone."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], int(fields[1])


def _alive(pid):
    stat = _stat(pid)
    return stat is not None and stat[0] not in 'ZX'  # a zombie has exited


def _children(pid):
    """{RANK: pid} of the processes whose parent is ``pid``."""
    ranks = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit() and (_stat(entry) or (None, None))[1] == pid:
            try:
                with open(f'/proc/{entry}/environ', 'rb') as f:
                    env = dict(v.split(b'=', 1) for v in f.read().split(b'\0') if b'=' in v)
            except OSError:
                continue
            if b'RANK' in env:
                ranks[int(env[b'RANK'])] = int(entry)
    return ranks


def _wait_until(condition, seconds, step=0.2):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(step)
    return condition()


def _start(tmp_path, data_root):
    """tools/dist_train.sh (2 processes, short collective timeout) in ``tmp_path``; its
    launcher Popen and a function that reads its log."""
    log = str(tmp_path / 'log.txt')
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = str(s.getsockname()[1])
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1', PORT=port)
    for key in ('LOCAL_RANK', 'RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        env.pop(key, None)
    opts = [
        f'{loader}.dataset.data_root={data_root}'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    ]
    opts += [
        f'env_cfg.dist_cfg.timeout={COLLECTIVE_TIMEOUT_S}', 'train_dataloader.batch_size=1',
        'train_cfg.max_iters=100000', 'train_cfg.val_interval=100000',
        'default_hooks.checkpoint.interval=100000', 'default_hooks.logger.interval=1'
    ]
    cmd = [
        'bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir',
        str(tmp_path / 'work'), '--cfg-options', *opts
    ]
    with open(log, 'w') as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def read_log():
        with open(log, errors='replace') as f:
            return f.read()

    return proc, read_log


@pytest.fixture(scope='module')
def jobs(tmp_path_factory, make_voc):
    """Two 2-process training jobs started together (one for each fault, so that they share
    the start-up): ``{name: (launcher Popen, {rank: pid}, read_log)}`` once every rank trains.
    Ends what is left."""
    tmp = tmp_path_factory.mktemp('dist_faults')
    data_root = str(tmp / 'VOCdevkit' / 'VOC2012')
    make_voc(data_root, n_train=4, n_val=2)
    started = {}
    for name in ('frozen', 'killed'):
        (tmp / name).mkdir()
        started[name] = _start(tmp / name, data_root)
    ranks = {name: {} for name in started}
    try:
        for name, (proc, read_log) in started.items():
            # the script execs torchrun: proc.pid is the launcher, the workers its children
            ok = _wait_until(
                lambda: proc.poll() is not None or read_log().count('Iter(train) [') >= 2,
                START_TIMEOUT_S,
                step=1)
            assert ok and proc.poll() is None, f'training did not start:\n{read_log()[-6000:]}'
            ranks[name].update(_children(proc.pid))
            assert sorted(ranks[name]) == [0, 1], (ranks, read_log()[-3000:])
        yield {name: (proc, ranks[name], read_log) for name, (proc, read_log) in started.items()}
    finally:
        for name, (proc, _) in started.items():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pid in ranks[name].values():
                if _alive(pid):
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGKILL)


def test_frozen_rank_ends_the_others(jobs):
    proc, ranks, read_log = jobs['frozen']
    os.kill(ranks[1], signal.SIGSTOP)
    t0 = time.monotonic()
    # rank 0 blocks in its next gradient all-reduce until the collective timeout
    _wait_until(lambda: not _alive(ranks[0]), 2 * COLLECTIVE_TIMEOUT_S)
    waited = time.monotonic() - t0
    assert not _alive(ranks[0]), (f'rank 0 still runs {waited:.0f} s after rank 1 froze '
                                  f'(collective timeout {COLLECTIVE_TIMEOUT_S} s)')
    print(f'rank 0 exited {waited:.1f} s after rank 1 was stopped '
          f'(timeout {COLLECTIVE_TIMEOUT_S} s)')
    # torchrun has sent the frozen rank SIGTERM (pending while it is stopped): let it act, and
    # the job fails as a whole
    os.kill(ranks[1], signal.SIGCONT)
    rc = proc.wait(timeout=60)
    log = read_log()
    assert rc != 0, log[-3000:]
    # rank 0 failed on its own (gloo's timeout), not because torchrun stopped it
    assert re.search(r'\[rank0\]:.*Timed out waiting', log), log[-3000:]
    code = re.search(r'rank\s*: 0 \(local_rank: 0\)\s*exitcode\s*: (-?\d+)', log)
    assert code and int(code.group(1)) > 0, log[-3000:]
    assert not _alive(ranks[1])


def test_killed_launcher_ends_its_workers(jobs):
    proc, ranks, _ = jobs['killed']
    proc.kill()  # SIGKILL: torchrun cannot stop its workers itself
    proc.wait()
    t0 = time.monotonic()
    gone = _wait_until(lambda: not any(_alive(pid) for pid in ranks.values()), 10)
    waited = time.monotonic() - t0
    assert gone, f'workers {ranks} still run {waited:.0f} s after their launcher was killed'
    print(f'workers ended {waited:.1f} s after the launcher was killed')
