"""Inject faults into real runs of the tools: nothing lost, nothing wrong loaded, nothing hung.

    python tools/fault_injection.py [--kills 10] [--seed 0] [--quick] [--with-dist]
                                    [--only KIND_OR_FAULT ...] [--work-dir DIR] [--json OUT]

Everything runs in ``--work-dir`` (default: a temporary folder, removed afterwards) on toy data
made there (``make_toy_voc.py``, 8 train + 2 val images) with ``configs/fcn8s_vgg16-tiny_toyvoc.py``
shortened by ``--cfg-options`` (24 iterations of batch 2, a checkpoint every 4,
``max_keep_ckpts=2``), each run a subprocess of ``tools/*.py``. Kinds:

* kills: a reference run, then ``--kills`` runs SIGKILLed at seeded random moments (during
  start-up, at an iteration, or while a checkpoint is written: when its hidden ``.iter_N.pth.tmp-*``
  file appears), maybe killed again after resuming, and resumed with ``--resume`` until done.
  Checked: every checkpoint on disk loads, ``--resume`` continues the highest one, no completed
  save is lost, at most ``max_keep_ckpts`` are left, the final weights equal the reference's.
* checkpoint, data: hostile files through ``tools/test.py``, ``tools/train.py`` (``load_from``,
  ``--resume``) and ``tools/check_dataset.py``: each must fail with a clear last message (exit
  status > 0, naming the problem and, for data, the file; a traceback line is not one), within
  1 GiB of peak RSS; a code-running pickle must never run, even with
  ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``.
* divergence: a run resumed at lr 1e30 must stop with every checkpoint finite, and resuming at
  lr 1e-3 must finish.
* dist (``--with-dist``): a frozen rank (SIGSTOP; 15 s collective timeout) and a killed
  launcher, ``tools/dist_train.sh`` with 2 CPU processes: the job must end.

Prints a table per kind (exit status, wall time to the error including the ~5 s start-up, peak
RSS of the process tree, last message) and ``faults tried N, survived M, data lost L``; exit
status 1 if any case FAILs. ``--quick``: one kill (during a save) and one case of each kind.
The small versions of these checks are in ``make test``.
"""
import argparse
import json
import os
import os.path as osp
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import torch
from _bootstrap import import_plugin  # first: it quiets the pkg_resources warning

import_plugin()

from _fault_lib import corrupt_sample  # noqa: E402
from _fault_lib import (DATA_FAULTS, Tail, alive, children, make_pickle_bomb, make_zip_bomb, run,
                        wait_until)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs', 'fcn8s_vgg16-tiny_toyvoc.py')
ITERS, EVERY, KEEP, MAX_MIB = 24, 4, 2, 1024
ENV = {
    k: v
    for k, v in os.environ.items() if k not in ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR',
                                                'MASTER_PORT', 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')
}
ENV.update(OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
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


def tool(name, *args):
    return [sys.executable, osp.join(ROOT, 'tools', name), *map(str, args)]


def data_options(data):
    """``--cfg-options`` pointing the three data loaders' datasets at ``data``."""
    return [f'{split}_dataloader.dataset.data_root={data}' for split in ('train', 'val', 'test')]


def train_cmd(work, data, *opts, iters=ITERS, resume=False):
    return tool('train.py', CONFIG, '--work-dir', work, *(['--resume'] if resume else []),
                '--cfg-options', *data_options(data), f'train_cfg.max_iters={iters}',
                'train_cfg.val_interval=100000', f'default_hooks.checkpoint.interval={EVERY}',
                f'default_hooks.checkpoint.max_keep_ckpts={KEEP}', 'train_dataloader.batch_size=2',
                'default_hooks.logger.interval=1', *opts)


def run_tool(cmd, log, env=ENV, **kwargs):
    return run(cmd, log, env, cwd=ROOT, **kwargs)


# ------------------------------------------------------------------------- checkpoint checks
def checkpoints(work):
    """{N: path} of the iter_N.pth files in ``work``."""
    names = os.listdir(work) if osp.isdir(work) else []
    return {
        int(m.group(1)): osp.join(work, m.group(0))
        for m in map(re.compile(r'iter_(\d+)\.pth').fullmatch, names) if m
    }


def load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def loads(path):
    try:
        return load(path) is not None
    except Exception:  # truncated or otherwise unreadable
        return False


def finite(path):
    return all(torch.isfinite(t).all() for t in load(path)['state_dict'].values())


def same_weights(a, b):
    sa, sb = load(a)['state_dict'], load(b)['state_dict']
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def completed_saves(out):
    """Iterations whose checkpoint save finished, as the log shows: a line follows it."""
    lines = out.splitlines()
    return [
        int(m.group(1)) for i, line in enumerate(lines)
        for m in [re.search(r'Saving checkpoint at (\d+) iterations', line)]
        if m and any('Iter(' in later or 'Saving' in later for later in lines[i + 1:])
    ]


def resumed_at(out):
    m = re.search(r'resumed epoch: \d+, iter: (\d+)', out)
    return int(m.group(1)) if m else 0


# ------------------------------------------------------------------------------------- kills
def kill_trigger(rng, work, mode=None):
    """(description, kill_when): during the n-th save, at an iteration, or during start-up."""
    mode = mode or rng.choice(['save', 'save', 'iter', 'startup'])
    if mode == 'save':
        nth, seen = rng.randint(1, ITERS // EVERY), set()
        old = {n for n in os.listdir(work) if 'tmp-' in n}  # left by an earlier kill

        def when(tail):
            seen.update(n for n in os.listdir(work) if n.startswith('.iter_') and 'tmp-' in n)
            return len(seen - old) >= nth

        return f'in save #{nth}', when
    if mode == 'iter':
        at, delay, hit = rng.randint(1, ITERS), rng.uniform(0, 0.15), []

        def when(tail):
            if not hit and re.search(rf'Iter\(train\) \[\s*{at}/', tail.read()):
                hit.append(time.monotonic())
            return bool(hit) and time.monotonic() - hit[0] >= delay

        return f'iter {at}+{delay:.2f}s', when
    after, start = rng.uniform(0.5, 6.0), time.monotonic()
    return f'{after:.1f}s in', lambda tail: time.monotonic() - start >= after


def kill_trial(i, rng, ctx, first_mode=None):
    """Kill a training run (and maybe its first resumption), resume until done, check."""
    work = osp.join(ctx.dir, f'kill{i}')
    os.makedirs(work, exist_ok=True)
    kills, resumed, problems, saved, most = [], [], [], [], 0
    t0 = time.monotonic()
    for step in range(5):
        highest = max((n for n, p in checkpoints(work).items() if loads(p)), default=0)
        killing = step == 0 or (len(kills) < 2 and rng.random() < 0.4)
        what, when = kill_trigger(rng, work, first_mode if step == 0 else None) if killing \
            else ('', None)
        r = run_tool(
            train_cmd(work, ctx.data, resume=step > 0),
            osp.join(ctx.dir, f'kill{i}_{step}'),
            kill_when=when)
        if step > 0 and (r['killed'] is None or 'resumed epoch' in r['out']):
            resumed.append(resumed_at(r['out']))
            if resumed[-1] != highest:
                problems.append(f'resumed at {resumed[-1]}, highest complete on disk {highest}')
        saved += completed_saves(r['out'])
        ckpts = checkpoints(work)
        most = max(most, len(ckpts))
        problems += [f'{osp.basename(p)} does not load' for p in ckpts.values() if not loads(p)]
        if r['killed'] is None or r['killed'] == 'timeout':
            kills += [what + ' (missed: it finished first)'] if what else []
            break
        tmp = any('tmp-' in n for n in os.listdir(work))
        kills.append(what + (' (tmp file left)' if tmp else ''))
    if r['rc'] != 0:
        problems.append(f'exit {r["rc"]}: {r["last"]}')
    ckpts = checkpoints(work)
    lost = int(max(saved, default=0) > max(ckpts, default=0))
    if lost:
        problems.append(f'saved up to {max(saved)}, on disk up to {max(ckpts, default=0)}')
    final = ckpts.get(ITERS)
    if not (final and same_weights(final, ctx.reference)):
        problems.append('final weights differ from the reference' if final else 'not finished')
    if len(ckpts) > KEEP:
        problems.append(f'{len(ckpts)} checkpoints left (max_keep_ckpts={KEEP})')
    if any('tmp-' in n for n in os.listdir(work)):
        problems.append('temporary files left')
    return dict(
        fault='; '.join(kills),
        tool='train.py',
        expected='same weights',
        rc=r['rc'],
        ok=not problems,
        seconds=round(time.monotonic() - t0, 1),
        peak_mib=r['peak_mib'],
        lost=lost,
        last='; '.join(problems)
        or f'resumed at {resumed}, at most {most} checkpoints on disk, same weights')


# --------------------------------------------------------------------------- hostile inputs
def judge(fault, name, r, pattern=None, line=None, bad_file=None):
    """A table row: an error (``pattern`` given: exit > 0, the last line matches it and names
    ``bad_file``, no traceback line) or success (exit 0); within MAX_MIB, no timeout."""
    line = r['last'] if line is None else line
    if pattern is None:
        ok = r['rc'] == 0
    else:
        ok = r['rc'] > 0 and bool(re.search(
            pattern, line, re.I)) and (bad_file is None
                                       or osp.basename(bad_file) in line) and not line.startswith(
                                           ('File "', 'raise ', 'Traceback'))
    notes = [] if ok else ['unexpected:']
    if r['peak_mib'] > MAX_MIB or r['killed'] == 'timeout':
        notes.insert(0, f'peak {r["peak_mib"]} MiB' if r['killed'] != 'timeout' else 'TIMEOUT')
        ok = False
    return dict(
        fault=fault,
        tool=name,
        expected=f'error /{pattern}/' if pattern else 'success',
        ok=ok,
        rc=r['rc'],
        seconds=r['seconds'],
        peak_mib=r['peak_mib'],
        last=' '.join(notes + [line]))


def make_checkpoint(ctx, fault, path):
    marker = osp.join(ctx.dir, 'CODE_RAN')
    if fault == 'code-running pickle':
        return make_pickle_bomb(path, marker)
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
        env = dict(ENV, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1') if 'pickle' in fault else ENV
        cmds = {
            'test.py':
            tool('test.py', CONFIG, path, '--work-dir', osp.join(ctx.dir, 'test'), '--cfg-options',
                 *data_options(ctx.data)),
            'train.py load_from':
            train_cmd(osp.join(ctx.dir, f'load_{slug}'), ctx.data, f'load_from={path}', iters=2)
        }
        for name, cmd in cmds.items():
            row = judge(fault, name,
                        run_tool(cmd, osp.join(ctx.dir, f'{slug}_{name[:5]}'), env=env), pattern)
            if osp.exists(marker):
                row.update(ok=False, last='CODE RAN: ' + row['last'])
            rows.append(row)
    if wanted(only, 'checkpoint', 'truncated newest'):
        work = osp.join(ctx.dir, 'truncated_newest')  # complete iter_8, truncated iter_12
        os.makedirs(work)
        shutil.copy(osp.join(osp.dirname(ctx.reference), 'iter_8.pth'), work)
        with open(ctx.reference, 'rb') as f, open(osp.join(work, 'iter_12.pth'), 'wb') as out:
            out.write(f.read()[:1 << 20])
        r = run_tool(train_cmd(work, ctx.data, resume=True), work)
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
                cmd = tool(name, CONFIG, '--workers', '1', '--cfg-options', *data_options(data))
            elif name == 'test.py':
                cmd = tool(name, CONFIG, ctx.reference, '--work-dir', data + '_test',
                           '--cfg-options', *data_options(data))
            else:
                cmd = train_cmd(data + '_train', data, iters=4)  # one epoch: every sample
            r = run_tool(cmd, f'{data}_{name[:-3]}', timeout=180)
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
    run_tool(
        train_cmd(work, ctx.data, iters=12),
        work + '_0',
        kill_when=lambda tail: 4 in checkpoints(work))
    r = run_tool(
        train_cmd(work, ctx.data, 'optim_wrapper.optimizer.lr=1e30', iters=12, resume=True),
        work + '_1')
    row = judge('lr 1e30 (--resume)', 'train.py', r, 'diverg')
    bad = [osp.basename(p) for p in checkpoints(work).values() if not finite(p)]
    if bad:
        row.update(ok=False, last=f'NON-FINITE {bad}: ' + row['last'])
    r = run_tool(
        train_cmd(work, ctx.data, 'optim_wrapper.optimizer.lr=1e-3', iters=12, resume=True),
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
        osp.join(ROOT, 'tools', 'dist_train.sh'), CONFIG, '2', '--work-dir', log[:-4],
        '--cfg-options', *data_options(ctx.data), 'train_cfg.max_iters=100000',
        f'env_cfg.dist_cfg.timeout={timeout}', 'train_dataloader.batch_size=1',
        'train_cfg.val_interval=100000', 'default_hooks.checkpoint.interval=100000'
    ]
    with open(log, 'w') as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(ENV, PYTHON=sys.executable, PORT=port))
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


# ---------------------------------------------------------------------------------- the run
def wanted(only, kind, fault=None):
    return not only or kind in only or fault in only


class Context:

    def __init__(self, directory, data_tools):
        self.dir, self.data, self.data_tools = directory, osp.join(directory, 'data'), data_tools
        self._reference = None

    @property
    def reference(self):
        """The uninterrupted run's final checkpoint (trained on first use, every checkpoint
        kept)."""
        if self._reference is None:
            work = osp.join(self.dir, 'reference')
            r = run_tool(
                train_cmd(work, self.data, 'default_hooks.checkpoint.max_keep_ckpts=-1'), work)
            if r['rc'] != 0:
                raise SystemExit(f'the reference run failed:\n{r["err"][-3000:]}')
            self._reference = osp.join(work, f'iter_{ITERS}.pth')
        return self._reference


def print_table(kind, rows):
    print(f'\n{kind}\n\n| fault | tool | expected | outcome | exit | time to error s | '
          'peak RSS MiB | last message |\n|---|---|---|---|---|---|---|---|')
    for r in rows:
        msg = r['last'].replace('|', '/')
        print(f"| {r['fault']} | {r['tool']} | {r['expected'].replace('|', '/')} | "
              f"{'ok' if r['ok'] else 'FAIL'} | {r['rc']} | {r['seconds']} | {r['peak_mib']} | "
              f"{msg if len(msg) <= 100 else msg[:97] + '...'} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--kills', type=int, default=10, help='killed-and-resumed runs')
    parser.add_argument('--seed', type=int, default=0, help='seed of the kill moments')
    parser.add_argument('--quick', action='store_true', help='one case of each kind')
    parser.add_argument('--with-dist', action='store_true', help='also the distributed faults')
    parser.add_argument(
        '--only',
        nargs='+',
        help='kinds (kills checkpoint data divergence '
        'dist) or faults (e.g. "zip bomb") to run')
    parser.add_argument('--work-dir', help='keep everything here (default: a temporary folder)')
    parser.add_argument('--json', help='write the tables and the summary to this file')
    args = parser.parse_args(argv)
    only = args.only or (['kills', 'code-running pickle', 'truncated JPEG', 'divergence'] +
                         (['dist'] if args.with_dist else []) if args.quick else None)
    directory = args.work_dir or tempfile.mkdtemp(prefix='fault_injection_')
    ctx = Context(
        directory,
        ['check_dataset.py'] if args.quick else ['check_dataset.py', 'test.py', 'train.py'])
    t0 = time.monotonic()
    subprocess.run(
        tool('dataset_converters/make_toy_voc.py', '--out-dir', ctx.data, '--num-train', 8,
             '--num-val', 2),
        check=True,
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL)
    tables, rng = {}, random.Random(args.seed)
    if wanted(only, 'kills'):
        tables['kills (SIGKILL, then --resume until done)'] = [
            kill_trial(i, rng, ctx, 'save' if args.quick else None)
            for i in range(1 if args.quick else args.kills)
        ]
    tables['hostile checkpoints'] = checkpoint_cases(ctx, only)
    tables['hostile data (a bad train sample, also listed in val)'] = data_cases(ctx, only)
    if wanted(only, 'divergence'):
        tables['divergence'] = divergence_cases(ctx)
    if args.with_dist or (only and 'dist' in only):
        tables['distributed (2 CPU processes)'] = [
            dist_case(ctx, 'frozen rank'),
            dist_case(ctx, 'killed launcher')
        ]
    tables = {kind: rows for kind, rows in tables.items() if rows}
    startup = run_tool(tool('train.py', '--help'), osp.join(directory, 'startup'))['seconds']
    for kind, rows in tables.items():
        print_table(kind, rows)
    rows = [r for rs in tables.values() for r in rs]
    survived = sum(r['ok'] for r in rows)
    summary = (f'faults tried {len(rows)}, survived {survived}, data lost '
               f'{sum(r.get("lost", 0) for r in rows)} ({time.monotonic() - t0:.0f} s; a tool '
               f'takes {startup} s to start: train.py --help)')
    print('\n' + summary)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(summary=summary, tables=tables), f, indent=1)
    if not args.work_dir:
        shutil.rmtree(directory, ignore_errors=True)
    return 0 if survived == len(rows) else 1


if __name__ == '__main__':
    sys.exit(main())
