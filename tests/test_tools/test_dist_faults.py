"""A distributed run ends when one of its processes cannot go on (tools/dist_train.sh, CPU).

Three jobs of 2 processes each (torchrun, gloo; started together) train the narrow FCN-8s of
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
from collections import namedtuple

import pytest

from fcn_plugin.runtime import is_complete_checkpoint

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'tests', 'configs', 'fcn8s_vgg16-narrow_tinyvoc.py')
COLLECTIVE_TIMEOUT_S = 6
# the jobs started together, by the fault each gets: --cfg-options of their own
JOBS = dict(
    frozen=(),
    killed=(),
    # a DataLoader worker per rank: torchrun signals each rank's process group
    # (and a sampler the resumed run starts where it stopped, instead of replaying the data)
    preempted=('train_dataloader.num_workers=1', 'train_dataloader.persistent_workers=True',
               'train_dataloader.sampler.type=ResumableInfiniteSampler'))
Job = namedtuple('Job', 'proc ranks read_log work data_root')
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


def _start(tmp_path, data_root, *extra):
    """tools/dist_train.sh (2 processes, short collective timeout, ``extra`` --cfg-options) in
    ``tmp_path``; its launcher Popen and a function that reads its log."""
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
        'default_hooks.checkpoint.interval=100000', 'default_hooks.logger.interval=1', *extra
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
    for name, extra in JOBS.items():
        (tmp / name).mkdir()
        started[name] = _start(tmp / name, data_root, *extra)
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
        yield {
            name: Job(proc, ranks[name], read_log, str(tmp / name / 'work'), data_root)
            for name, (proc, read_log) in started.items()
        }
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
    proc, ranks, read_log = jobs['frozen'][:3]
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
    proc, ranks, _ = jobs['killed'][:3]
    proc.kill()  # SIGKILL: torchrun cannot stop its workers itself
    proc.wait()
    t0 = time.monotonic()
    gone = _wait_until(lambda: not any(_alive(pid) for pid in ranks.values()), 10)
    waited = time.monotonic() - t0
    assert gone, f'workers {ranks} still run {waited:.0f} s after their launcher was killed'
    print(f'workers ended {waited:.1f} s after the launcher was killed')


def test_sigterm_stops_every_rank_with_a_checkpoint(jobs, build_runner, one_thread):
    """SIGTERM to the launcher once training runs (torchrun forwards it to each rank's process
    group, DataLoader workers included): both ranks stop after the same iteration, rank 0
    saves it, every rank exits with 143 (its workers shut down) and the job non-zero within
    seconds, naming the checkpoint and the command; --resume (here in one process, batch 2:
    the update 2 ranks of batch 1 make) continues it (fcn_plugin/runtime/preemption.py)."""
    proc, ranks, read_log, work, data_root = jobs['preempted']
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    waited = time.monotonic() - sent
    assert _wait_until(lambda: not any(_alive(pid) for pid in ranks.values()), 10)
    text = read_log()
    print(f'the job exited {code} {waited:.1f} s after SIGTERM')
    assert code != 0, text[-3000:]
    lines = re.findall(r'tools/train\.py: error: TrainingInterrupted: (.*)', text)
    assert len(lines) == 2, text[-4000:]  # one per rank, the same
    match = re.match(
        r'SIGTERM received: training stopped after iteration (\d+); checkpoint '
        r'(\S+) saved\. Continue with: bash tools/dist_train\.sh \S+ 2 ', lines[0])
    assert match and lines[1].split(' (traceback')[0] == lines[0].split(' (traceback')[0], lines
    step, path = int(match.group(1)), match.group(2)
    assert path == osp.join(work, f'iter_{step}.pth') and is_complete_checkpoint(path)
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read().strip() == path
    assert waited < 30, text[-3000:]

    from mmengine.config import Config
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict({
        f'{loader}.dataset.data_root': data_root
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    })
    cfg.merge_from_dict({'train_dataloader.sampler.type': 'ResumableInfiniteSampler'})
    cfg.merge_from_dict(
        dict(
            work_dir=work,
            resume=True,
            log_level='WARNING',
            train_cfg=dict(max_iters=step + 2, val_interval=100)))
    runner = build_runner(cfg)
    runner.train()
    assert runner.iter == step + 2
    assert is_complete_checkpoint(osp.join(work, f'iter_{step + 2}.pth'))
