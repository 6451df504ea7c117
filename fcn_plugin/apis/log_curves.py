"""The training loss and the validation mIoU of a work dir over iterations, and their plot
(``tools/analyze_logs.py``): :func:`analyze_logs`.

mmengine writes one ``WORK_DIR/<timestamp>/vis_data/scalars.json`` per run (one JSON object a
line): training lines carry ``loss`` (and ``decode.loss_ce``, ``lr``...) at ``step`` = iteration;
validation lines carry ``mIoU``/``mAcc``/``aAcc`` (percent). A resumed run writes a new
timestamp folder that continues the iteration count, so by default every run of the work dir is
read in time order and later values of the same iteration replace earlier ones. ``WORK_DIR`` may
also be a ``scalars.json`` file.

Each key gets one panel. Training keys are drawn as lines, validation keys with markers; a
validation point is placed at its iteration (mmseg's configs log validation by iteration;
when a config logs it by epoch, at the last training iteration logged before it).
"""
import glob
import json
import os.path as osp
import sys
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

VAL_KEYS = ('mIoU', 'mAcc', 'aAcc', 'mDice', 'mFscore', 'mPrecision', 'mRecall')


def find_scalar_files(work_dir: str, run: Optional[str] = None) -> List[str]:
    """``scalars.json`` files of ``work_dir`` in run order (timestamps sort chronologically)."""
    if osp.isfile(work_dir):
        return [work_dir]
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'{work_dir}: no such work dir or scalars.json')
    pattern = osp.join(work_dir, run or '*', 'vis_data', 'scalars.json')
    files = sorted(glob.glob(pattern))
    if not files:
        raise FileNotFoundError(
            f'{work_dir}: no {osp.join(run or "<timestamp>", "vis_data", "scalars.json")} '
            'found; is it the work dir of a tools/train.py run with LocalVisBackend (the '
            'default)?')
    return files


def load_scalars(files: Sequence[str]) -> Dict[str, 'OrderedDict[int, float]']:
    """Read the logs into ``{key: OrderedDict(iteration -> value)}``, train and val keys."""
    series = {}
    for path in files:
        last_train_step = 0
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError as e:
                    print(f'warning: {path}:{lineno} is not JSON ({e}); skipped', file=sys.stderr)
                    continue
                step = entry.get('step', entry.get('iter'))
                if step is None:
                    continue
                is_val = any(k in entry for k in VAL_KEYS)
                if is_val:
                    # logged by epoch (or at 0 before training): place at the last train iter
                    if step < last_train_step:
                        step = last_train_step
                else:
                    last_train_step = step
                for key, value in entry.items():
                    if key in ('step', 'iter', 'epoch') or not isinstance(value, (int, float)):
                        continue
                    series.setdefault(key, OrderedDict())[step] = float(value)
    return {k: OrderedDict(sorted(v.items())) for k, v in series.items()}


def plot(series: dict, keys: Sequence[str], out: str, title: Optional[str] = None) -> List[str]:
    """Write one panel per key (shared iteration axis) to ``out``; returns the keys drawn."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    present = [k for k in keys if k in series]
    missing = [k for k in keys if k not in series]
    if missing:
        print(
            f'warning: no values for {missing} in the log (available: {sorted(series)})',
            file=sys.stderr)
    if not present:
        raise ValueError(f'none of {keys} is in the log; available keys: {sorted(series)}')
    fig, axes = plt.subplots(
        len(present), 1, figsize=(7, 2.6 * len(present)), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], present):
        xs, ys = list(series[key]), list(series[key].values())
        is_val = key in VAL_KEYS
        ax.plot(xs, ys, marker='o' if is_val or len(xs) < 30 else None, linewidth=1.2)
        ax.set_ylabel(key + (' (%)' if is_val else ''))
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel('iteration')
    if title:
        axes[0, 0].set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return present


@dataclass
class LogCurves:
    """What :func:`analyze_logs` found and drew: ``series`` ``{key: OrderedDict(iteration ->
    value)}`` of every numeric key logged, the keys ``drawn`` and the plot's path ``out``."""
    series: Dict[str, 'OrderedDict[int, float]']
    drawn: List[str]
    out: str

    def summary(self) -> List[str]:
        """One line per key drawn: points, last value (validation keys: and the best)."""
        lines = []
        for key in self.drawn:
            values = self.series[key]
            last_it, last = next(reversed(values.items()))
            line = f'{key}: {len(values)} points, last {last:.4g} at iter {last_it}'
            if key in VAL_KEYS:
                best_it = max(values, key=values.get)
                line += f', best {values[best_it]:.4g} at iter {best_it}'
            lines.append(line)
        return lines


def analyze_logs(work_dir: str,
                 out: Optional[str] = None,
                 keys: Sequence[str] = ('loss', 'mIoU'),
                 run: Optional[str] = None,
                 title: Optional[str] = None) -> LogCurves:
    """Read the ``scalars.json`` logs of ``work_dir`` (every run in time order, or only the
    timestamp folder ``run``; or ``work_dir`` is a ``scalars.json``) and plot ``keys``, one panel
    each, to ``out`` (default ``WORK_DIR/curves.png``; ``title`` default: the work dir's name).
    Raises FileNotFoundError without logs, ValueError when none of ``keys`` was logged."""
    series = load_scalars(find_scalar_files(work_dir, run))
    if not out:
        out = osp.join(work_dir if osp.isdir(work_dir) else osp.dirname(work_dir), 'curves.png')
    drawn = plot(series, list(keys), out, title or osp.basename(osp.normpath(work_dir)))
    return LogCurves(series, drawn, out)
