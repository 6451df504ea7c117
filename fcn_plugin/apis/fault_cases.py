"""The hostile-input, divergence and distributed cases of
:func:`~fcn_plugin.apis.fault_suite.fault_injection` (the kills: :mod:`.fault_runs`), each
returning its table rows (dicts: fault, tool, expected, ok, rc, seconds, peak_mib, last)."""
import os
import os.path as osp
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import torch

from .fault_runs import (ITERS, checkpoints, data_options, finite, judge, load, resumed_at,
                         same_weights, wanted)
from .faults import (DATA_FAULTS, Tail, alive, children, corrupt_sample, make_pickle_bomb,
                     make_zip_bomb, wait_until)

CKPT_FAULTS = [  # fault, what the last line must match
    ('unrelated keys', 'unexpected|missing|key'),
    ('wrong shapes', 'shape|size'),
    ('code-running pickle', 'unsafe|refus|not allowed|weights.only'),
    ('truncated', 'truncat|corrupt|incomplete'),
    ('zip bomb', 'bomb|too large|decompress|size|GiB|exceed'),
    ('tensor-only', 'state.?dict|tensor|not a checkpoint|weights'),
]
DATA_PATTERNS = dict(
    zip(DATA_FAULTS, [
        'not found|no such|missing|not exist', 'truncat|corrupt|decod|incomplete',
        'corrupt|decod|crc|truncat|broken|cannot identify', 'outside|range|value',
        'colou?r|channel|rgb', 'size|shape', 'pixel|large|bomb|decompress|dimension|limit',
        'symbolic|symlink|loop'
    ]))


# --------------------------------------------------------------------------- hostile inputs
def make_checkpoint(ctx, fault, path):
    """A hostile checkpoint (``fault``: one of :data:`CKPT_FAULTS`) at ``path``."""
    if fault == 'code-running pickle':
        return make_pickle_bomb(path, osp.join(ctx.dir, 'CODE_RAN'))
    if fault == 'zip bomb':
        return make_zip_bomb(path, 2 << 30)
    if fault == 'truncated':
        with open(ctx.reference, 'rb') as f:
            data = f.read()
        with open(path, 'wb') as f:
            return f.write(data[:len(data) // 2])
    state = load(ctx.reference)['state_dict']
    if fault == 'unrelated keys':
        obj = {'state_dict': {'other.' + k: v for k, v in state.items()}}
    elif fault == 'wrong shapes':
        obj = {
            'state_dict': {
                k: torch.zeros(v.shape[0] + 1, *v.shape[1:])
                for k, v in state.items()
            }
        }
    else:  # tensor-only
        obj = torch.zeros(3, 3)
    torch.save(obj, path)


def checkpoint_cases(ctx, only):
    rows, marker = [], osp.join(ctx.dir, 'CODE_RAN')
    for fault, pattern in CKPT_FAULTS:
        if not wanted(only, 'checkpoint', fault):
            continue
        slug = re.sub(r'\W+', '_', fault)
        path = osp.join(ctx.dir, f'ckpt_{slug}.pth')
        make_checkpoint(ctx, fault, path)
        env = dict(ctx.env, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1') if 'pickle' in fault else None
        cmds = {
            'test.py':
            ctx.tool('test.py', ctx.config, path, '--work-dir', osp.join(ctx.dir, 'test'),
                     '--cfg-options', *data_options(ctx.data)),
            'train.py load_from':
            ctx.train_cmd(
                osp.join(ctx.dir, f'load_{slug}'), ctx.data, f'load_from={path}', iters=2)
        }
        for name, cmd in cmds.items():
            row = judge(fault, name, ctx.run(cmd, osp.join(ctx.dir, f'{slug}_{name[:5]}'), env),
                        pattern)
            if osp.exists(marker):
                row.update(ok=False, last='CODE RAN: ' + row['last'])
            rows.append(row)
    if wanted(only, 'checkpoint', 'truncated newest'):
        work = osp.join(ctx.dir, 'truncated_newest')  # complete iter_8, truncated iter_12
        os.makedirs(work)
        shutil.copy(osp.join(osp.dirname(ctx.reference), 'iter_8.pth'), work)
        with open(ctx.reference, 'rb') as f, open(osp.join(work, 'iter_12.pth'), 'wb') as out:
            out.write(f.read()[:1 << 20])
        r = ctx.run(ctx.train_cmd(work, ctx.data, resume=True), work)
        row = judge('truncated newest', 'train.py --resume', r)
        final = checkpoints(work).get(ITERS)
        row['ok'] &= resumed_at(r['out']) == 8 and bool(final) and same_weights(
            final, ctx.reference)
        row['last'] = f'resumed at {resumed_at(r["out"])}, ' + ('same weights as the reference'
                                                                if row['ok'] else r['last'])
        rows.append(row)
    return rows


def data_cases(ctx, only):
    rows = []
    for fault in DATA_FAULTS:
        if not wanted(only, 'data', fault):
            continue
        data = osp.join(ctx.dir, 'data_' + re.sub(r'\W+', '_', fault))
        shutil.copytree(ctx.data, data)
        split = osp.join(data, 'ImageSets', 'Segmentation')
        shutil.copy(osp.join(split, 'train.txt'), osp.join(split, 'val.txt'))  # test.py too
        bad = corrupt_sample(data, fault)
        for name in ctx.data_tools:
            if name == 'check_dataset.py':
                cmd = ctx.tool(name, ctx.config, '--workers', '1', '--cfg-options',
                               *data_options(data))
            elif name == 'test.py':
                cmd = ctx.tool(name, ctx.config, ctx.reference, '--work-dir', data + '_test',
                               '--cfg-options', *data_options(data))
            else:
                cmd = ctx.train_cmd(data + '_train', data, iters=4)  # one epoch: every sample
            r = ctx.run(cmd, f'{data}_{name[:-3]}', timeout=180)
            line = None
            if name == 'check_dataset.py':  # it lists every bad file on stdout
                named = [ln.strip() for ln in r['out'].splitlines() if osp.basename(bad) in ln]
                line = named[0] if named else r['last']
            rows.append(judge(fault, name, r, DATA_PATTERNS[fault], line, bad))
    return rows


def divergence_cases(ctx):
    """Train past the iteration-4 checkpoint (killed there), resume at lr 1e30 (must stop,
    every checkpoint finite), then resume at lr 1e-3 (must finish, finite)."""
    work = osp.join(ctx.dir, 'diverge')
    ctx.run(
        ctx.train_cmd(work, ctx.data, iters=12),
        work + '_0',
        kill_when=lambda tail: 4 in checkpoints(work))
    r = ctx.run(
        ctx.train_cmd(work, ctx.data, 'optim_wrapper.optimizer.lr=1e30', iters=12, resume=True),
        work + '_1')
    row = judge('lr 1e30 (--resume)', 'train.py', r, 'diverg')
    bad = [osp.basename(p) for p in checkpoints(work).values() if not finite(p)]
    if bad:
        row.update(ok=False, last=f'NON-FINITE {bad}: ' + row['last'])
    r = ctx.run(
        ctx.train_cmd(work, ctx.data, 'optim_wrapper.optimizer.lr=1e-3', iters=12, resume=True),
        work + '_2')
    final = checkpoints(work).get(12)
    row2 = judge('then lr 1e-3 (--resume)', 'train.py', r)
    row2['ok'] &= bool(final) and finite(final)
    row2['last'] = (f'resumed at {resumed_at(r["out"])}, iter_12 finite'
                    if row2['ok'] else row2['last'])
    return [row, row2]


# ------------------------------------------------------------------------------ distributed
def dist_case(ctx, fault, timeout=15):
    """tools/dist_train.sh, 2 CPU processes; once they train, SIGSTOP the younger worker or
    SIGKILL the launcher, and time until the job (the surviving workers) ends."""
    log = osp.join(ctx.dir, f'dist_{fault.split()[0]}.log')
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = str(s.getsockname()[1])
    cmd = [
        'bash',
        osp.join(ctx.root, 'tools', 'dist_train.sh'), ctx.config, '2', '--work-dir', log[:-4],
        '--cfg-options', *data_options(ctx.data), 'train_cfg.max_iters=100000',
        f'env_cfg.dist_cfg.timeout={timeout}', 'train_dataloader.batch_size=1',
        'train_cfg.val_interval=100000', 'default_hooks.checkpoint.interval=100000'
    ]
    with open(log, 'w') as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ctx.root,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(ctx.env, PYTHON=sys.executable, PORT=port))
    tail, workers, waited, ok = Tail(log), [], None, False
    try:
        if wait_until(lambda: proc.poll() is not None or tail.read().count('Iter(train)') >= 2,
                      180) and proc.poll() is None:
            workers, t0 = children(proc.pid), time.monotonic()
            if fault == 'frozen rank':
                os.kill(workers[-1], signal.SIGSTOP)
                wait_until(lambda: not alive(workers[0])[0], 4 * timeout)
                waited = time.monotonic() - t0
                os.kill(workers[-1], signal.SIGCONT)
                ok = not alive(workers[0])[0] and proc.wait(timeout=60) != 0
            else:
                proc.kill()
                proc.wait()
                ok = wait_until(lambda: not any(alive(p)[0] for p in workers), 30)
                waited = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in workers:
            if alive(pid)[0]:
                os.kill(pid, signal.SIGKILL)
    lines = [ln.strip() for ln in tail.read().splitlines() if ln.strip()] or ['']
    lines = [ln for ln in lines if 'Timed out' in ln] or lines  # the surviving rank's error
    return dict(
        fault=fault,
        tool='dist_train.sh',
        expected=f'ends (timeout {timeout} s)',
        ok=ok,
        rc=proc.returncode,
        seconds=round(waited or -1, 1),
        peak_mib='-',
        last=lines[-1] if waited is not None else 'did not start')
