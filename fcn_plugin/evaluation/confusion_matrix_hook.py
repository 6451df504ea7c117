"""Write each evaluation's confusion matrix (.npy, .csv, heatmap .png) into the run's log dir;
a matrix that cannot be written (disk full, read-only) is reported once and the run goes on."""
import csv
import os.path as osp
from typing import Optional

import numpy as np
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ..utils.io import atomic_write
from .logger_hook import report_write_failure


def write_confusion_matrix(hist: np.ndarray, classes, stem: str) -> None:
    """``stem.npy`` (counts), ``stem.csv`` (counts, class names as headers; rows = ground
    truth, columns = prediction) and ``stem.png`` (rows normalised to 1, as a heatmap); each
    file complete or absent (:func:`~fcn_plugin.utils.io.atomic_write`)."""
    with atomic_write(stem + '.npy') as tmp:
        with open(tmp, 'wb') as f:
            np.save(f, hist)
    with atomic_write(stem + '.csv') as tmp:
        with open(tmp, 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['ground truth \\ prediction', *classes])
            for name, row in zip(classes, hist.astype(np.int64)):
                writer.writerow([name, *row.tolist()])
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    with np.errstate(divide='ignore', invalid='ignore'):
        norm = np.nan_to_num(hist / hist.sum(1, keepdims=True))
    n = len(classes)
    fig, ax = plt.subplots(figsize=(2 + 0.45 * n, 1.5 + 0.45 * n))
    image = ax.imshow(norm, cmap='viridis', vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=90)
    ax.set_yticks(range(n), classes)
    ax.set_xlabel('prediction')
    ax.set_ylabel('ground truth')
    ax.set_title('confusion matrix (rows sum to 1)')
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    try:
        with atomic_write(stem + '.png') as tmp:
            fig.savefig(tmp, dpi=100, format='png')
    finally:
        plt.close(fig)


@HOOKS.register_module()
class ConfusionMatrixHook(Hook):
    """After each validation and test, write the confusion matrix of every metric that keeps
    one (``FCNMetric.last_confusion_matrix``) to ``<log_dir>/confusion_matrix/``:
    ``val_iter_<N>.{npy,csv,png}`` or ``test.{npy,csv,png}``.

    A matrix that cannot be written (an ``OSError``: disk full, read-only, over quota) is
    reported once with a warning naming the file and the error, and the run goes on (each file
    is complete or absent); later evaluations try again."""

    priority = 'LOW'

    def __init__(self) -> None:
        self._reported: set = set()

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._write(runner, runner.val_loop, f'val_iter_{runner.iter}')

    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._write(runner, runner.test_loop, 'test')

    def _write(self, runner, loop, name: str) -> None:
        if not is_main_process():
            return
        for metric in getattr(getattr(loop, 'evaluator', None), 'metrics', []):
            hist = getattr(metric, 'last_confusion_matrix', None)
            if hist is None:
                continue
            stem = osp.join(runner.log_dir, 'confusion_matrix', name)
            metric.last_confusion_matrix = None
            try:
                write_confusion_matrix(hist, list(metric.dataset_meta['classes']), stem)
            except OSError as error:
                report_write_failure(self._reported, 'confusion_matrix',
                                     f'the confusion matrix {stem}.npy/.csv/.png', error,
                                     type(self).__name__)
                continue
            print_log(f'confusion matrix: {stem}.npy/.csv/.png', logger='current')
