"""One training run per work dir (WorkDirLockHook), and runs never mix: every checkpoint records
the run and config that wrote it; a new run does not start on an earlier run's checkpoints, a
--resume refuses checkpoints of several runs or of another config, retention deletes only the
run's own (fcn_plugin/runtime/runs.py, load_policy.py, checkpoint_hook.py)."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from fcn_plugin.runtime.runs import LOCK_NAME, RunConflictError, run_of

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture
def data(tmp_path, make_voc):
    make_voc(tmp_path / 'data', n_train=2, n_val=1)
    return tmp_path / 'data'


@pytest.fixture
def train(data, tiny_cfg, build_runner):
    """``train(work_dir, **tiny_cfg overrides)``: the runner after train() (4 iterations,
    checkpoints at 2 and 4 by default)."""

    def run(work_dir, **overrides):
        args = dict(max_iters=4, ckpt_interval=2, val_interval=100, lr=1e-5)
        runner = build_runner(tiny_cfg(data, work_dir, **dict(args, **overrides)))
        runner.train()
        return runner

    return run


HOLDER = """
import fcntl, json, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.write(fd, sys.argv[2].encode())
print('locked', flush=True)
time.sleep(120)
"""


def hold_lock(work_dir, **holder):
    """Another training run, as far as the lock goes: a process that holds it (with its
    record); kill it to end it."""
    os.makedirs(work_dir, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, '-c', HOLDER,
         os.path.join(work_dir, LOCK_NAME),
         json.dumps(holder)],
        stdout=subprocess.PIPE,
        text=True)
    assert proc.stdout.readline().strip() == 'locked'
    return proc


def test_a_second_run_on_a_work_dir_in_use_is_refused(tmp_path, train, monkeypatch):
    work = tmp_path / 'work'
    holder = hold_lock(
        work, pid=4242, host='node7', started='2026-12-05T01:00:00', config='fcn8s_vgg16_voc.py')
    with pytest.raises(
            RunConflictError,
            match=r'in use by another training run \(pid 4242 on '
            r'node7, started 2026-12-05T01:00:00, config fcn8s_vgg16_voc.py\)'):
        train(work)
    assert not [n for n in os.listdir(work) if n.endswith('.pth')]
    holder.kill()  # the holder is killed: the kernel releases its lock; its file stays
    holder.wait()
    import fcn_plugin.runtime.runs as runs
    said = []
    monkeypatch.setattr(runs, 'print_log', lambda msg, *a, **k: said.append(msg))
    runner = train(work)  # the stale lock is taken over
    assert any('of an earlier run that ended without releasing it (pid 4242' in m for m in said)
    assert runner.iter == 4 and not os.path.exists(work / LOCK_NAME)  # released at the end


def test_checkpoints_record_their_run_and_a_new_run_leaves_them_alone(tmp_path, train):
    work = tmp_path / 'work'
    first = train(work)
    runs = [run_of(str(work / f'iter_{n}.pth')) for n in (2, 4)]
    assert runs[0] == runs[1] and runs[0]['config'] == 'fcn_runtime.py' and runs[0]['id']
    before = {n: (work / n).stat().st_mtime_ns for n in ('iter_2.pth', 'iter_4.pth')}
    # a new run (no --resume) in the same work dir: refused before writing anything
    with pytest.raises(
            RunConflictError,
            match=r'holds checkpoints of an earlier run '
            r'\(iter_2.pth, iter_4.pth\): continue it with --resume'):
        train(work, max_iters=2)
    assert {n: (work / n).stat().st_mtime_ns for n in before} == before
    # --resume continues the same run (the same id in its new checkpoints)
    resumed = train(work, max_iters=6, resume=True)
    assert resumed.iter == 6 and first.iter == 4
    assert run_of(str(work / 'iter_6.pth'))['id'] == runs[0]['id']


def test_resume_refuses_mixed_runs_and_another_config(tmp_path, train):
    a, b = tmp_path / 'a', tmp_path / 'b'
    train(a)
    train(b, max_iters=6)
    shutil.copy(b / 'iter_6.pth', a)  # another run's checkpoint copied in by hand
    pointer = (a / 'last_checkpoint').read_text()
    with pytest.raises(RunConflictError, match=r'written by 2 different runs'):
        train(a, max_iters=8, resume=True)
    assert (a / 'last_checkpoint').read_text() == pointer  # a refused run writes nothing
    os.remove(a / 'iter_6.pth')
    ckpt = torch.load(a / 'iter_4.pth', weights_only=True)
    ckpt['meta']['fcn_run']['config'] = 'fcn8s_vgg16_voc.py'
    torch.save(ckpt, a / 'iter_4.pth')
    with pytest.raises(
            RunConflictError,
            match=r'iter_4.pth was written by a run of config '
            r'fcn8s_vgg16_voc.py, not fcn_runtime.py'):
        train(a, max_iters=8, resume=True)


@HOOKS.register_module(force=True)
class _CopyIn(Hook):
    """Copies ``src`` into the work dir before iteration ``at`` (a file another run wrote)."""

    def __init__(self, src, at):
        self.src, self.at = src, at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.at:
            shutil.copy(self.src, runner.work_dir)


def test_retention_deletes_only_the_runs_own_checkpoints(tmp_path, train):
    work, other = tmp_path / 'work', tmp_path / 'other'
    train(other, max_iters=2)
    keep_one = dict(checkpoint=dict(max_keep_ckpts=1))
    train(work, max_iters=4, default_hooks=keep_one)
    runner = train(
        work,
        max_iters=6,
        resume=True,
        default_hooks=keep_one,
        custom_hooks=[dict(type='_CopyIn', src=str(other / 'iter_2.pth'), at=5)])
    assert runner.iter == 6
    assert sorted(n for n in os.listdir(work) if n.endswith('.pth')) == ['iter_2.pth', 'iter_6.pth']
