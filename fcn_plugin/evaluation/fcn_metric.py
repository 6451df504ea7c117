"""The FCN paper's four segmentation metrics from a dataset-level confusion matrix."""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.logging import MMLogger, print_log
from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS
from prettytable import PrettyTable

from ..utils.config_vars import ConfigError

REPORTED = ('aAcc', 'mAcc', 'mIoU', 'fwIoU')  # FCNMetric's scores, in this order


def confusion_matrix(pred: np.ndarray, label: np.ndarray, num_classes: int) -> np.ndarray:
    """``(num_classes, num_classes)`` int64 counts, rows = ground truth, columns = prediction.

    Pixels whose label is outside ``[0, num_classes)`` (void, 255) are dropped, as in the
    reference's ``fast_hist``; predictions are assumed to lie in ``[0, num_classes)``.
    """
    label = np.asarray(label).reshape(-1).astype(np.int64)
    pred = np.asarray(pred).reshape(-1).astype(np.int64)
    keep = (label >= 0) & (label < num_classes)
    return np.bincount(
        num_classes * label[keep] + pred[keep],
        minlength=num_classes**2).reshape(num_classes, num_classes)


def hist_to_metrics(hist: np.ndarray) -> Dict[str, np.ndarray]:
    """The reference's scores from a confusion matrix (FCN, ``score.py``), as fractions.

    Returns ``aAcc`` (pixel accuracy, trace / total), ``mAcc`` (nanmean of per-class recall),
    ``mIoU`` (nanmean of per-class IU), ``fwIoU`` (IU weighted by ground-truth frequency, over
    classes with frequency > 0), and the per-class ``Acc`` and ``IoU`` arrays. A class with no
    ground truth has ``Acc`` NaN; with no ground truth and no prediction, ``IoU`` NaN too; the
    means skip NaN. ``aAcc``, ``Acc`` and ``IoU`` are mmseg's
    (:meth:`IoUMetric.total_area_to_metrics`, here in float64 on exact counts).
    """
    hist = torch.as_tensor(np.asarray(hist), dtype=torch.float64)
    intersect, gt, pred = hist.diagonal(), hist.sum(1), hist.sum(0)
    scores = IoUMetric.total_area_to_metrics(intersect, gt + pred - intersect, pred, gt, ['mIoU'])
    acc, iou = scores['Acc'], scores['IoU']
    freq = (gt / hist.sum()).numpy()
    valid = freq > 0
    return OrderedDict(
        aAcc=scores['aAcc'],
        mAcc=_nanmean(acc),
        mIoU=_nanmean(iou),
        fwIoU=(freq[valid] * iou[valid]).sum() if valid.any() else np.nan,
        Acc=acc,
        IoU=iou)


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float('nan')


@METRICS.register_module()
class FCNMetric(IoUMetric):
    """Pixel accuracy, mean accuracy, mean IU and frequency-weighted IU, as in the FCN paper.

    mmseg's :class:`IoUMetric` (its ``process``: saving predictions, ``format_only``) with
    exact dataset-level counts: each image's record is its ``(n, n)`` int64 confusion matrix
    (rows = ground truth, columns = prediction; void pixels dropped) instead of float32
    per-class areas, and all scores come from ONE matrix summed over the whole evaluation set,
    not from per-image scores; see :func:`hist_to_metrics`. Keys, in percent and unrounded:
    ``aAcc``, ``mAcc``, ``mIoU`` (the values ``IoUMetric`` rounds to two decimals), ``fwIoU``
    (new), and per class ``IoU.<class>`` and ``Acc.<class>`` (also logged as a table with each
    class's ground-truth pixels). The summed confusion matrix is kept as
    ``last_confusion_matrix`` for :class:`ConfusionMatrixHook`. ``per_image_iou=True`` adds
    ``mIoU_img``, the mean over images of each image's own mean IoU: a different (and usually
    lower) number that some write-ups report; it is not the paper's.

    Distributed evaluation: :class:`BaseMetric` gathers the per-image matrices from every rank
    (and drops the copies a distributed sampler pads in) before :meth:`compute_metrics` sums
    them, so the result is the same for any number of ranks.

    Args:
        ignore_index: the void label; labels outside ``[0, num_classes)`` are dropped anyway.
        per_image_iou: also report the mean of per-image mean IoU as ``mIoU_img``.
        output_dir: if set, save each prediction there as ``<image name>.png`` (label values).
        format_only: only save predictions (test sets without ground truth).
        collect_device, prefix: see :class:`mmengine.evaluator.BaseMetric`.
        iou_metrics: ``['mIoU']`` (or left out), as in configs written for ``IoUMetric``: the
            metric always reports the four scores above; ``mDice`` and ``mFscore`` (mmseg's
            ``IoUMetric``) are not computed, and asking for them is a :class:`ConfigError`.
        keep_results: accepted and ignored (mmseg's ``tools/test.py --out`` sets it).

    Any other argument (``IoUMetric``'s ``nan_to_num`` and ``beta`` included: they change
    nothing here) is a :class:`ConfigError` naming the closest accepted name
    (:mod:`fcn_plugin.utils.arguments`).
    """

    def __init__(self,
                 ignore_index: int = 255,
                 per_image_iou: bool = False,
                 output_dir: Optional[str] = None,
                 format_only: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 iou_metrics: Union[str, Sequence[str]] = ('mIoU', ),
                 keep_results: bool = False) -> None:
        metrics = [iou_metrics] if isinstance(iou_metrics, str) else list(iou_metrics)
        if metrics != ['mIoU']:
            raise ConfigError(
                f'FCNMetric: iou_metrics={iou_metrics!r} is not what it computes: it reports '
                f'{", ".join(REPORTED)} (and IoU and Acc per class) from the dataset-level '
                "confusion matrix. Leave iou_metrics out (or set ['mIoU']); mmseg's "
                'IoUMetric computes mDice and mFscore.')
        super().__init__(
            ignore_index=ignore_index,
            collect_device=collect_device,
            output_dir=output_dir,
            format_only=format_only,
            prefix=prefix)
        self.per_image_iou = per_image_iou

    @staticmethod
    def intersect_and_union(pred_label: torch.Tensor, label: torch.Tensor, num_classes: int,
                            ignore_index: int) -> np.ndarray:
        """The record :meth:`IoUMetric.process` appends per image: here the image's confusion
        matrix (:func:`confusion_matrix`), from which intersection, union and both areas
        follow, as exact int64 counts."""
        label = label.cpu().numpy().astype(np.int64)
        label[label == ignore_index] = -1
        return confusion_matrix(pred_label.cpu().numpy(), label, num_classes)

    def compute_metrics(self, results: List[np.ndarray]) -> Dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        if self.format_only:
            logger.info(f'predictions are saved to {self.output_dir}')
            return OrderedDict()
        if not results:
            raise ValueError('FCNMetric: no results to evaluate (empty evaluation set?)')
        hist = np.sum(results, axis=0)
        scores = hist_to_metrics(hist)
        metrics = OrderedDict((key, float(scores[key]) * 100) for key in REPORTED)
        if self.per_image_iou:
            metrics['mIoU_img'] = _nanmean([hist_to_metrics(h)['mIoU'] for h in results]) * 100

        table = PrettyTable()
        table.add_column('Class', list(self.dataset_meta['classes']))
        table.add_column('IoU', np.round(scores['IoU'] * 100, 2).tolist())
        table.add_column('Acc', np.round(scores['Acc'] * 100, 2).tolist())
        table.add_column('GT pixels', hist.sum(1).astype(np.int64).tolist())
        print_log('per class results:', logger)
        print_log('\n' + table.get_string(), logger=logger)
        print_log(
            'FCN metrics (dataset-level confusion matrix, %d images): ' % len(results) +
            ', '.join(f'{k} {v:.2f}' for k, v in metrics.items()),
            logger=logger)
        for name, iou, acc in zip(self.dataset_meta['classes'], scores['IoU'], scores['Acc']):
            metrics[f'IoU.{name}'] = float(iou) * 100  # NaN: no ground truth and no prediction
            metrics[f'Acc.{name}'] = float(acc) * 100
        self.last_confusion_matrix = hist  # ConfusionMatrixHook writes it to the work dir
        return metrics
