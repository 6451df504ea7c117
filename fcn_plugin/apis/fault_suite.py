"""Inject faults into real runs of the tools: nothing lost, nothing wrong loaded, nothing hung
(``tools/fault_injection.py``)::

    from fcn_plugin.apis import fault_injection
    report = fault_injection(quick=True)
    print(report.markdown(), report.summary, sep='\\n')

Everything runs in ``work_dir`` (default: a temporary folder, removed afterwards) on toy data
made there (``make_toy_voc.py``, 8 train + 2 val images) with ``configs/fcn8s_vgg16-tiny_toyvoc.py``
shortened by ``--cfg-options`` (24 iterations of batch 2, a checkpoint every 4,
``max_keep_ckpts=2``), each run a subprocess of the checkout's ``tools/*.py``. Kinds:

* kills: a reference run, then ``kills`` runs SIGKILLed at seeded random moments (during
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
* dist (``with_dist``): a frozen rank (SIGSTOP; 15 s collective timeout) and a killed
  launcher, ``tools/dist_train.sh`` with 2 CPU processes: the job must end.
* signals (:mod:`.fault_signals`): SIGTERM, SIGUSR1, Ctrl-C (also a second signal during the
  save, and to a 2-process ``dist_train.sh`` job): the iteration reached must be saved, the
  exit status non-zero, and the command the message gives must continue the run.
* workdirs, reports, inputs (:mod:`.fault_files`): two runs in one work dir, runs whose
  checkpoints would mix, ``--resume`` with custom checkpoint names or a binary
  ``last_checkpoint``; a full disk for the confusion matrix and the scalars log, a read-only
  work dir (:mod:`.fault_shim`); EXIF-tagged photos, a split file listing an image 9 times or
  nothing, misspelt ``FCNMetric`` arguments, ``infer.py`` outputs that would clobber files.

The report has a table per kind (exit status, wall time to the error including the ~5 s
start-up, peak RSS of the process tree, last message) and the summary ``faults tried N, survived
M, data lost L``. ``quick``: one kill (during a save) and one case of most kinds.
The small versions of these checks are in ``make test``.
"""
import os
import random
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from .fault_cases import checkpoint_cases, data_cases, dist_case, divergence_cases
from .fault_files import QUICK as FILES_QUICK
from .fault_files import input_cases, report_cases, workdir_cases
from .fault_runs import ROOT, Context, FaultInjectionError, kill_trial, wanted
from .fault_signals import QUICK as SIGNALS_QUICK
from .fault_signals import signal_cases

__all__ = ['FaultInjectionError', 'FaultReport', 'fault_injection']
QUICK = [
    'kills', 'code-running pickle', 'truncated JPEG', 'divergence', *SIGNALS_QUICK, *FILES_QUICK
]
COLUMNS = ('fault', 'tool', 'expected', 'outcome', 'exit', 'time to error s', 'peak RSS MiB',
           'last message')


@dataclass
class FaultReport:
    """``tables``: {kind: rows}, each row a dict (fault, tool, expected, ok, rc, seconds,
    peak_mib, last; kills also lost); ``summary``: one line."""
    tables: Dict[str, List[dict]]
    summary: str

    @property
    def rows(self) -> List[dict]:
        return [row for rows in self.tables.values() for row in rows]

    @property
    def ok(self) -> bool:
        """Whether every fault was survived."""
        return all(row['ok'] for row in self.rows)

    def to_dict(self) -> dict:
        """The report as ``tools/fault_injection.py --json`` writes it."""
        return dict(summary=self.summary, tables=self.tables)

    def markdown(self) -> str:
        """A Markdown table per kind, each after a blank line and its title."""
        lines = []
        for kind, rows in self.tables.items():
            lines += ['', kind, '', '| ' + ' | '.join(COLUMNS) + ' |', '|---' * len(COLUMNS) + '|']
            for r in rows:
                msg = r['last'].replace('|', '/')
                lines.append(f"| {r['fault']} | {r['tool']} | {r['expected'].replace('|', '/')} | "
                             f"{'ok' if r['ok'] else 'FAIL'} | {r['rc']} | {r['seconds']} | "
                             f"{r['peak_mib']} | {msg if len(msg) <= 100 else msg[:97] + '...'} |")
        return '\n'.join(lines)


def fault_injection(kills: int = 10,
                    seed: int = 0,
                    quick: bool = False,
                    with_dist: bool = False,
                    only: Optional[Sequence[str]] = None,
                    work_dir: Optional[str] = None,
                    root: str = ROOT) -> FaultReport:
    """Run the experiment (minutes: every case is a real run of a tool); returns its report.

    Args:
        kills: killed-and-resumed runs.
        seed: seed of the kill moments.
        quick: one kill (during a save) and one case of most kinds.
        with_dist: also the distributed faults (two CPU processes).
        only: kinds (``kills checkpoint data divergence dist signals workdirs reports
            inputs``) or faults (e.g. ``'zip bomb'``) to run.
        work_dir: keep everything there (default: a temporary folder, removed afterwards).
        root: the source checkout whose tools and configs run (default: this package's).

    Raises:
        FaultInjectionError: no ``tools/`` in ``root``, or the toy data or the reference run
            (the uninterrupted training the others are compared with) failed.
    """
    only = only or ((QUICK + (['dist'] if with_dist else [])) if quick else None)
    directory = work_dir or tempfile.mkdtemp(prefix='fault_injection_')
    try:
        os.makedirs(directory, exist_ok=True)
        ctx = Context(
            directory,
            ['check_dataset.py'] if quick else ['check_dataset.py', 'test.py', 'train.py'], root)
        t0 = time.monotonic()
        made = subprocess.run(
            ctx.tool('dataset_converters/make_toy_voc.py', '--out-dir', ctx.data, '--num-train', 8,
                     '--num-val', 2),
            cwd=root,
            env=ctx.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True)
        if made.returncode != 0:
            raise FaultInjectionError(f'making the toy data failed:\n{made.stderr[-3000:]}')
        tables, rng = {}, random.Random(seed)
        if wanted(only, 'kills'):
            tables['kills (SIGKILL, then --resume until done)'] = [
                kill_trial(i, rng, ctx, 'save' if quick else None)
                for i in range(1 if quick else kills)
            ]
        tables['hostile checkpoints'] = checkpoint_cases(ctx, only)
        tables['hostile data (a bad train sample, also listed in val)'] = data_cases(ctx, only)
        if wanted(only, 'divergence'):
            tables['divergence'] = divergence_cases(ctx)
        tables['signals (checkpoints every 4 iterations)'] = signal_cases(ctx, only)
        tables['work dirs: one run each, never mixed'] = workdir_cases(ctx, only)
        tables['logs and reports that cannot be written'] = report_cases(ctx, only)
        tables['inputs: EXIF, split files, metric arguments, infer.py outputs'] = input_cases(
            ctx, only)
        if with_dist or (only and 'dist' in only):
            tables['distributed (2 CPU processes)'] = [
                dist_case(ctx, 'frozen rank'),
                dist_case(ctx, 'killed launcher')
            ]
        tables = {kind: rows for kind, rows in tables.items() if rows}
        startup = ctx.run(ctx.tool('train.py', '--help'), os.path.join(directory,
                                                                       'startup'))['seconds']
        rows = [r for rs in tables.values() for r in rs]
        summary = (f'faults tried {len(rows)}, survived {sum(r["ok"] for r in rows)}, data lost '
                   f'{sum(r.get("lost", 0) for r in rows)} ({time.monotonic() - t0:.0f} s; a tool '
                   f'takes {startup} s to start: train.py --help)')
        return FaultReport(tables, summary)
    finally:
        if not work_dir:
            shutil.rmtree(directory, ignore_errors=True)
