"""FCNMetric against a direct numpy implementation of docs/fcn_reference.md section 4."""
import os
import tempfile

import numpy as np
import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS

from fcn_plugin.evaluation import FCNMetric, confusion_matrix, hist_to_metrics
from fcn_plugin.utils.config_vars import ConfigError

CLASSES = ('c0', 'c1', 'c2', 'c3', 'c4')


def reference_scores(preds, labels, n):
    """The formulas, written out with loops and np.nanmean, on the whole set at once."""
    hist = np.zeros((n, n))
    for p, l in zip(preds, labels):
        for gt, pr in zip(l.ravel(), p.ravel()):
            if 0 <= gt < n:
                hist[gt, pr] += 1
    diag = np.diag(hist)
    with np.errstate(divide='ignore', invalid='ignore'):
        iu = diag / (hist.sum(1) + hist.sum(0) - diag)
        freq = hist.sum(1) / hist.sum()
        return dict(
            aAcc=np.diag(hist).sum() / hist.sum() * 100,
            mAcc=np.nanmean(diag / hist.sum(1)) * 100,
            mIoU=np.nanmean(iu) * 100,
            fwIoU=(freq[freq > 0] * iu[freq > 0]).sum() * 100), hist


def make_set(seed=0, num=6):
    """Images of different sizes: class 4 never appears (no GT, no prediction), class 3 is
    predicted but never in the ground truth, and 255 marks void pixels."""
    rng = np.random.default_rng(seed)
    preds, labels = [], []
    for _ in range(num):
        h, w = rng.integers(5, 12, size=2)
        label = rng.integers(0, 3, size=(h, w))
        label[rng.random((h, w)) < 0.2] = 255
        pred = np.where(
            rng.random((h, w)) < 0.6, np.where(label == 255, 0, label),
            rng.integers(0, 4, size=(h, w)))
        preds.append(pred)
        labels.append(label)
    return preds, labels


def to_samples(preds, labels):
    return [
        dict(
            pred_sem_seg=dict(data=torch.from_numpy(p)[None]),
            gt_sem_seg=dict(data=torch.from_numpy(l.astype(np.uint8))[None]),
            img_path=f'img_{i}.jpg') for i, (p, l) in enumerate(zip(preds, labels))
    ]


def run_metric(preds, labels, **kwargs):
    metric = METRICS.build(dict(type='FCNMetric', **kwargs))
    metric.dataset_meta = dict(classes=CLASSES)
    for sample in to_samples(preds, labels):
        metric.process({}, [sample])
    return metric.evaluate(len(preds))


def test_metric_matches_reference_formulas():
    preds, labels = make_set()
    expected, hist = reference_scores(preds, labels, len(CLASSES))
    assert hist[4].sum() == 0 and hist[:, 4].sum() == 0  # NaN class: must be skipped
    assert hist[3].sum() == 0 and hist[:, 3].sum() > 0  # IoU 0 (counts), Acc NaN (skipped)
    got = run_metric(preds, labels)
    assert list(got)[:4] == ['aAcc', 'mAcc', 'mIoU', 'fwIoU']
    assert list(got)[4:] == [f'{m}.{c}' for c in CLASSES for m in ('IoU', 'Acc')]
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    # mIoU averages 4 classes (0..3), mAcc 3 (0..2): a NaN treated as 0 would change both
    iu = hist_to_metrics(hist)['IoU']
    assert np.isnan(iu[4]) and iu[3] == 0
    assert got['mIoU'] == pytest.approx(np.mean(iu[:4]) * 100)


def test_agrees_with_mmseg_iou_metric():
    """aAcc/mAcc/mIoU are mmseg's IoUMetric's (which rounds to 2 decimals), on the same data."""
    preds, labels = make_set(seed=3, num=5)
    ours = run_metric(preds, labels)
    mmseg = IoUMetric(iou_metrics=['mIoU'])
    mmseg.dataset_meta = dict(classes=CLASSES)
    for sample in to_samples(preds, labels):
        mmseg.process({}, [sample])
    theirs = mmseg.evaluate(len(preds))
    assert set(theirs) == {'aAcc', 'mAcc', 'mIoU'}
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(float(value), abs=0.005 + 1e-9), key
        assert round(ours[key], 2) == pytest.approx(float(value)), key


def test_void_pixels_are_dropped():
    label = np.array([[0, 1], [255, 255]])
    pred = np.array([[0, 1], [1, 0]])
    hist = confusion_matrix(pred, label, 2)
    np.testing.assert_array_equal(hist, [[1, 0], [0, 1]])
    got = run_metric([pred], [label])
    assert got['aAcc'] == 100 and got['mIoU'] == 100 and got['fwIoU'] == 100


def test_dataset_level_differs_from_per_image_mean():
    # image 1: one big, perfectly segmented class-0 region; image 2: a tiny class-1 miss
    l1, p1 = np.zeros((10, 10), int), np.zeros((10, 10), int)
    l2, p2 = np.array([[1, 1]]), np.array([[1, 0]])
    got = run_metric([p1, p2], [l1, l2], per_image_iou=True)
    expected, _ = reference_scores([p1, p2], [l1, l2], len(CLASSES))
    assert got['mIoU'] == pytest.approx(expected['mIoU'])
    per_image = np.mean([100.0, np.nanmean([0 / 1, 1 / 2]) * 100])
    assert got['mIoU_img'] == pytest.approx(per_image)
    assert abs(got['mIoU'] - got['mIoU_img']) > 1


def test_output_dir_and_keep_results_accepted(tmp_path):
    preds, labels = make_set(num=2)
    got = run_metric(preds, labels, output_dir=str(tmp_path), keep_results=True)
    assert 'mIoU' in got
    assert sorted(os.listdir(tmp_path)) == ['img_0.png', 'img_1.png']


def test_iou_metrics_only_what_it_computes():
    """IoUMetric's iou_metrics=['mIoU'] (a child config switching the type keeps it) changes
    nothing; metrics it does not compute, and unknown arguments, are ConfigErrors."""
    preds, labels = make_set(num=2)
    plain = run_metric(preds, labels)
    for value in (['mIoU'], 'mIoU', ('mIoU', )):
        assert run_metric(preds, labels, iou_metrics=value) == pytest.approx(plain, nan_ok=True)
    for value in (['mDice'], ['mIoU', 'mFscore'], []):
        with pytest.raises(ConfigError, match=r'reports aAcc, mAcc, mIoU, fwIoU .*IoUMetric'):
            METRICS.build(dict(type='FCNMetric', iou_metrics=value))
    for wrong, right in (('per_image_iuo', 'per_image_iou'), ('ignore_idx', 'ignore_index')):
        with pytest.raises(ConfigError, match=f"'{wrong}' \\(did you mean '{right}'"):
            METRICS.build(dict(type='FCNMetric', **{wrong: True}))
    with pytest.raises(ConfigError, match="unknown argument 'nan_to_num'; FCNMetric accepts"):
        FCNMetric(nan_to_num=0)  # IoUMetric's: it would change nothing here


def _dist_worker(rank, world_size, init_file, out_file):
    torch_dist.init_process_group(
        'gloo', init_method=f'file://{init_file}', rank=rank, world_size=world_size)
    preds, labels = make_set(seed=1, num=7)
    samples = to_samples(preds, labels)
    # mmengine's DefaultSampler: interleaved shards, padded by repeating the first samples
    per_rank = -(-len(samples) // world_size)
    indices = list(range(len(samples)))
    indices += indices[:per_rank * world_size - len(indices)]
    metric = FCNMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    for i in indices[rank::world_size]:
        metric.process({}, [samples[i]])
    result = metric.evaluate(len(samples))
    if rank == 0:
        torch.save(result, out_file)
    torch_dist.destroy_process_group()


def test_distributed_sum_over_ranks_equals_single_process():
    """Two gloo ranks with a padded shard give exactly the single-process numbers."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'result.pth')
        mp.spawn(_dist_worker, args=(2, os.path.join(tmp, 'init'), out), nprocs=2)
        dist_result = torch.load(out)
    preds, labels = make_set(seed=1, num=7)
    single = run_metric(preds, labels)
    for key in single:
        assert dist_result[key] == pytest.approx(single[key], abs=1e-12, nan_ok=True), key
