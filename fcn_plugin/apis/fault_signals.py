"""The signal cases of :func:`~fcn_plugin.apis.fault_suite.fault_injection`: a training run
asked to stop once its log shows iteration :data:`STOP_AT` (a checkpoint every 4: the last
periodic one is 12, the next 16): SIGTERM as ``kill``, a scheduler or torchrun send it, SIGUSR1
as Slurm's ``--signal``, SIGINT to the process group as Ctrl-C; a second signal while the
stop's checkpoint is written; and SIGTERM / SIGINT to ``tools/dist_train.sh`` with 2 CPU
processes.

Checked: the exit status (128 + the signal in one process, non-zero for the job), the last line
names the iteration reached and its checkpoint (no iteration the log shows is lost), the
checkpoint is complete, and the command that line gives continues the run: to the reference
run's weights in one process, to the end for the job."""
import os
import os.path as osp
import re
import shlex
import signal
import socket
import sys

from .fault_runs import EVERY, ITERS, checkpoints, loads, resumed_at, same_weights, wanted

STOP_AT = 13
SIGNAL_CASES = [  # fault, [(signal, to the process group)], distributed, in --quick
    (f'SIGTERM after iteration {STOP_AT}', [(signal.SIGTERM, False)], False, True),
    (f'SIGINT (Ctrl-C) after iteration {STOP_AT}', [(signal.SIGINT, True)], False, False),
    (f'SIGUSR1 (Slurm --signal) after iteration {STOP_AT}', [(signal.SIGUSR1, False)], False,
     False),
    ('SIGTERM, then SIGINT during the save', [(signal.SIGTERM, False),
                                              (signal.SIGINT, True)], False, False),
    ('SIGTERM to dist_train.sh (2 ranks)', [(signal.SIGTERM, False)], True, False),
    ('SIGINT to dist_train.sh (Ctrl-C, 2 ranks)', [(signal.SIGINT, True)], True, False),
]
QUICK = [case[0] for case in SIGNAL_CASES if case[3]]
STOPPED = re.compile(
    r'received: training stopped (?:after|during the validation after) '
    r'iteration (\d+); checkpoint (\S+) saved\. Continue with: (.+?)'
    r'(?: \(traceback in \S+\))?$', re.M)


def logged_iteration(out):
    """The highest training iteration the log shows done (0: none)."""
    return max(map(int, re.findall(r'Iter\(train\) \[\s*(\d+)/', out)), default=0)


def at_iteration(n):
    return lambda tail: logged_iteration(tail.read()) >= n


def saving(work):
    """Whether a checkpoint is being written in ``work`` (its hidden temporary file exists)."""
    return lambda tail: any(
        name.startswith('.iter_') and 'tmp-' in name for name in (os.listdir(work)
                                                                  if osp.isdir(work) else []))


def dist_env(env):
    """``env`` for a ``dist_train.sh`` job: this interpreter, a free port."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return dict(env, PYTHON=sys.executable, PORT=str(s.getsockname()[1]))


def continuing(line, env):
    """The command a stop message gives (``python ...`` or ``bash tools/dist_train.sh ...``),
    runnable here, and its environment."""
    words = shlex.split(line)
    if words[0] == 'python':
        return [sys.executable, *words[1:]], env
    return words, dist_env(env)


def signal_case(ctx, fault, sent, dist):
    """Train (``dist``: as a 2-process job), send ``sent`` ((signal, group) pairs; the first
    at iteration :data:`STOP_AT`, a second while the stop's checkpoint is written), check the
    stop, then run the command it names."""
    slug = re.sub(r'\W+', '_', fault)
    work = osp.join(ctx.dir, slug)
    cmd, env = ctx.train_cmd(work, ctx.data), ctx.env
    if dist:  # [python, tools/train.py, CONFIG, ...] as 2 processes
        cmd, env = ['bash',
                    osp.join(ctx.root, 'tools', 'dist_train.sh'), cmd[2], '2',
                    *cmd[3:]], dist_env(env)
    whens = [at_iteration(STOP_AT), saving(work)]
    r = ctx.run(
        cmd, work + '_run', env, timeout=240, signals=[(w, s, g) for w, (s, g) in zip(whens, sent)])
    text = r['out'] + r['err']
    logged, stop = logged_iteration(r['out']), STOPPED.search(text)
    saved = int(stop.group(1)) if stop else max(
        (n for n, p in checkpoints(work).items() if loads(p)), default=0)
    lost = max(0, logged - saved)
    first = sent[0][0]
    exit_ok = r['rc'] != 0 if dist else r['rc'] == 128 + first
    problems = [] if exit_ok else [f'exit {r["rc"]}']
    if len(r['sent']) < len(sent):
        problems.append(f'only {len(r["sent"])} of {len(sent)} signals sent (it ended first)')
    if stop is None:
        problems.append('no stop message: ' + r['last'])
    elif not loads(stop.group(2)):
        problems.append(f'{stop.group(2)} does not load')
    if stop is not None and saved % EVERY == 0:  # then the save proves nothing
        problems.append(f'stopped at iteration {saved}, a periodic checkpoint: run it again')
    if lost:
        problems.append(f'{lost} iterations lost (log at {logged}, saved {saved})')
    after = ''
    if stop is not None and not problems:
        words, env2 = continuing(stop.group(3), env)
        r2 = ctx.run(words, work + '_resume', env2, timeout=240)
        final = checkpoints(work).get(ITERS)
        if r2['rc'] != 0 or resumed_at(r2['out']) != saved or not (final and loads(final)):
            problems.append(f'the command it gives: exit {r2["rc"]}, resumed at '
                            f'{resumed_at(r2["out"])}: {r2["last"]}')
        elif not dist and not same_weights(final, ctx.reference):
            problems.append('resumed: final weights differ from the reference')
        else:
            after = ('; its command resumed: same weights as the reference'
                     if not dist else '; its command resumed to the end')
    return dict(
        fault=fault,
        tool='dist_train.sh' if dist else 'train.py',
        expected='save the iteration reached, exit != 0, resume',
        ok=not problems,
        rc=r['rc'],
        seconds=round(r['seconds'] - (r['sent'] or [0])[0], 1),
        peak_mib=r['peak_mib'],
        lost=int(lost > 0),
        last='; '.join(problems) or f'saved iteration {saved} (log at {logged}, 0 lost){after}')


def signal_cases(ctx, only):
    """The rows of :data:`SIGNAL_CASES` that ``only`` selects (kind ``signals``)."""
    return [
        signal_case(ctx, fault, sent, dist) for fault, sent, dist, _ in SIGNAL_CASES
        if wanted(only, 'signals', fault)
    ]
