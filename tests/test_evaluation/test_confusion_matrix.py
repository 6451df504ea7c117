"""Every evaluation keeps its confusion matrix: per-class scores in the metrics, files on disk."""
import csv
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fcn_plugin.evaluation import ConfusionMatrixHook, FCNMetric

CLASSES = ('background', 'cat', 'dog')


def evaluated_metric():
    metric = FCNMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    label = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 0, 1]])
    metric.process({},
                   [dict(pred_sem_seg=dict(data=pred[None]), gt_sem_seg=dict(data=label[None]))])
    return metric, metric.evaluate(1)


def test_per_class_scores_and_kept_matrix():
    metric, scores = evaluated_metric()
    expected = np.array([[1, 1, 0], [0, 3, 0], [1, 0, 1]])  # rows: ground truth; void dropped
    assert np.array_equal(metric.last_confusion_matrix, expected)
    assert scores['IoU.cat'] == pytest.approx(100 * 3 / 4)
    assert scores['Acc.dog'] == pytest.approx(50)
    assert scores['IoU.background'] == pytest.approx(100 / 3)


def test_hook_writes_npy_csv_png_after_test(tmp_path):
    metric, _ = evaluated_metric()
    runner = SimpleNamespace(
        log_dir=str(tmp_path),
        iter=7,
        test_loop=SimpleNamespace(evaluator=SimpleNamespace(metrics=[metric])),
        val_loop=SimpleNamespace(evaluator=SimpleNamespace(metrics=[metric])))
    hook = ConfusionMatrixHook()
    hook.after_test_epoch(runner)
    out = tmp_path / 'confusion_matrix'
    assert np.array_equal(np.load(out / 'test.npy'), [[1, 1, 0], [0, 3, 0], [1, 0, 1]])
    rows = list(csv.reader(open(out / 'test.csv')))
    assert rows[0][1:] == list(CLASSES) and rows[2] == ['cat', '0', '3', '0']
    assert (out / 'test.png').read_bytes()[:4] == b'\x89PNG'
    assert metric.last_confusion_matrix is None  # written once
    hook.after_val_epoch(runner)  # nothing new evaluated: nothing written
    assert not (out / 'val_iter_7.npy').exists()


def test_tensorboard_backend_logs_scalars(tmp_path):
    pytest.importorskip('tensorboard')
    from mmseg.visualization import SegLocalVisualizer
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    vis = SegLocalVisualizer(
        name='tb_test',
        save_dir=str(tmp_path),
        vis_backends=[dict(type='LocalVisBackend'),
                      dict(type='TensorboardVisBackend')])
    vis.add_scalars({'loss': 0.5, 'mIoU': 81.0}, step=3)
    vis.close()
    events = EventAccumulator(str(tmp_path / 'vis_data')).Reload()
    assert {'loss', 'mIoU'} <= set(events.Tags()['scalars'])
    assert events.Scalars('mIoU')[0].value == pytest.approx(81.0)


def test_a_matrix_that_cannot_be_written_is_reported_once(tmp_path, monkeypatch):
    """Disk full while the heatmap is written: the run goes on, a warning names the files and
    the error (once), and no partial file is left; the .npy and .csv written before it stay."""
    import errno
    import os

    from matplotlib.figure import Figure

    from fcn_plugin.evaluation import logger_hook

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    warned = []
    monkeypatch.setattr(logger_hook, 'print_log', lambda msg, **kw: warned.append(msg))
    monkeypatch.setattr(Figure, 'savefig', no_space)
    hook = ConfusionMatrixHook()
    for step in (2, 4):
        metric, _ = evaluated_metric()
        runner = SimpleNamespace(
            log_dir=str(tmp_path),
            iter=step,
            val_loop=SimpleNamespace(evaluator=SimpleNamespace(metrics=[metric])))
        hook.after_val_epoch(runner)
        assert metric.last_confusion_matrix is None
    out = tmp_path / 'confusion_matrix'
    assert sorted(os.listdir(out)) == [f'val_iter_{i}.{e}' for i in (2, 4) for e in ('csv', 'npy')]
    assert len(warned) == 1 and f'{out}/val_iter_2.npy/.csv/.png' in warned[0]
    assert '[Errno 28] No space left on device' in warned[0]
