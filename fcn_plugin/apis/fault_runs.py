"""The runs of :func:`~fcn_plugin.apis.fault_suite.fault_injection`: the shortened toy
training every case starts from (:class:`Context`), what a checkpoint folder holds and what a
log says, the verdict on one run (:func:`judge`), and the kill trials (:func:`kill_trial`)."""
import os
import os.path as osp
import re
import sys
import time

import torch

from .faults import run

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))  # the source checkout
ITERS, EVERY, KEEP, MAX_MIB = 24, 4, 2, 1024  # iterations, checkpoint interval and number kept
DIST_VARS = ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')


class FaultInjectionError(RuntimeError):
    """The experiment cannot run: no source checkout, or its reference run failed."""


# ------------------------------------------------------------------------------------ the runs
def data_options(data):
    """``--cfg-options`` pointing the three data loaders' datasets at ``data``."""
    return [f'{split}_dataloader.dataset.data_root={data}' for split in ('train', 'val', 'test')]


def wanted(only, kind, fault=None):
    """Whether ``only`` (kinds or faults; None: everything) selects ``kind`` or ``fault``."""
    return not only or kind in only or fault in only


class Context:
    """The experiment's folder ``directory`` (toy data in ``data/``), the tools the data faults
    go through, and the commands: ``configs/fcn8s_vgg16-tiny_toyvoc.py`` of the checkout
    ``root``, shortened to :data:`ITERS` iterations of batch 2, a checkpoint every :data:`EVERY`
    (:data:`KEEP` kept). The tools run without distributed or weights-only variables of this
    process's environment, on one thread."""

    def __init__(self, directory, data_tools, root=ROOT):
        if not osp.isfile(osp.join(root, 'tools', 'train.py')):
            raise FaultInjectionError(f'fault injection runs the tools of a source checkout: no '
                                      f'tools/train.py in {root}')
        self.dir, self.data, self.data_tools = directory, osp.join(directory, 'data'), data_tools
        self.root = root
        self.config = osp.join(root, 'configs', 'fcn8s_vgg16-tiny_toyvoc.py')
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in DIST_VARS + ('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', )
        }
        self.env.update(OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
        self._reference = None

    def tool(self, name, *args):
        return [sys.executable, osp.join(self.root, 'tools', name), *map(str, args)]

    def train_cmd(self, work, data, *opts, iters=ITERS, resume=False):
        return self.tool('train.py', self.config, '--work-dir', work,
                         *(['--resume'] if resume else []), '--cfg-options', *data_options(data),
                         f'train_cfg.max_iters={iters}', 'train_cfg.val_interval=100000',
                         f'default_hooks.checkpoint.interval={EVERY}',
                         f'default_hooks.checkpoint.max_keep_ckpts={KEEP}',
                         'train_dataloader.batch_size=2', 'default_hooks.logger.interval=1', *opts)

    def run(self, cmd, log, env=None, **kwargs):
        """:func:`run` in the checkout with :attr:`env` (or ``env``)."""
        return run(cmd, log, self.env if env is None else env, cwd=self.root, **kwargs)

    @property
    def reference(self):
        """The uninterrupted run's final checkpoint (trained on first use, every checkpoint
        kept)."""
        if self._reference is None:
            work = osp.join(self.dir, 'reference')
            r = self.run(
                self.train_cmd(work, self.data, 'default_hooks.checkpoint.max_keep_ckpts=-1'), work)
            if r['rc'] != 0:
                raise FaultInjectionError(f'the reference run failed:\n{r["err"][-3000:]}')
            self._reference = osp.join(work, f'iter_{ITERS}.pth')
        return self._reference


# ------------------------------------------------------------------- checkpoints, logs, verdict
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
        r = ctx.run(
            ctx.train_cmd(work, ctx.data, resume=step > 0),
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
