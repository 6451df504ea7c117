"""Write each evaluation's confusion matrix (.npy, .csv, heatmap .png) into the run's log dir."""
import csv
import os
import os.path as osp
from typing import Optional

import numpy as np
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS


def write_confusion_matrix(hist: np.ndarray, classes, stem: str) -> None:
    """``stem.npy`` (counts), ``stem.csv`` (counts, class names as headers; rows = ground
    truth, columns = prediction) and ``stem.png`` (rows normalised to 1, as a heatmap)."""
    os.makedirs(osp.dirname(stem) or '.', exist_ok=True)
    np.save(stem + '.npy', hist)
    with open(stem + '.csv', 'w', newline='') as f:
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
    fig.savefig(stem + '.png', dpi=100)
    plt.close(fig)


@HOOKS.register_module()
class ConfusionMatrixHook(Hook):
    """After each validation and test, write the confusion matrix of every metric that keeps
    one (``FCNMetric.last_confusion_matrix``) to ``<log_dir>/confusion_matrix/``:
    ``val_iter_<N>.{npy,csv,png}`` or ``test.{npy,csv,png}``."""

    priority = 'LOW'

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._write(runner, runner.val_loop, f'val_iter_{runner.iter}')

    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._write(runner, runner.test_loop, 'test')

    @staticmethod
    def _write(runner, loop, name: str) -> None:
        if not is_main_process():
            return
        for metric in getattr(getattr(loop, 'evaluator', None), 'metrics', []):
            hist = getattr(metric, 'last_confusion_matrix', None)
            if hist is None:
                continue
            stem = osp.join(runner.log_dir, 'confusion_matrix', name)
            write_confusion_matrix(hist, list(metric.dataset_meta['classes']), stem)
            metric.last_confusion_matrix = None
            print_log(f'confusion matrix: {stem}.npy/.csv/.png', logger='current')
