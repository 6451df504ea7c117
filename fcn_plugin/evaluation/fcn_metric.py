"""The FCN paper's four segmentation metrics from a dataset-level confusion matrix."""
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.dist import is_main_process
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmengine.utils import mkdir_or_exist
from PIL import Image
from prettytable import PrettyTable

from mmseg.registry import METRICS


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
    means skip NaN.
    """
    hist = np.asarray(hist, dtype=np.float64)
    diag = np.diag(hist)
    gt, pred = hist.sum(1), hist.sum(0)
    with np.errstate(divide='ignore', invalid='ignore'):
        acc = diag / gt
        iou = diag / (gt + pred - diag)
        total = hist.sum()
        freq = gt / total
        a_acc = diag.sum() / total
    valid = freq > 0
    return OrderedDict(
        aAcc=a_acc,
        mAcc=_nanmean(acc),
        mIoU=_nanmean(iou),
        fwIoU=(freq[valid] * iou[valid]).sum() if valid.any() else np.nan,
        Acc=acc,
        IoU=iou)


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float('nan')


@METRICS.register_module()
class FCNMetric(BaseMetric):
    """Pixel accuracy, mean accuracy, mean IU and frequency-weighted IU, as in the FCN paper.

    All four come from ONE confusion matrix summed over the whole evaluation set (rows =
    ground truth, columns = prediction; void pixels dropped), not from per-image scores; see
    :func:`hist_to_metrics`. Keys, in percent: ``aAcc``, ``mAcc``, ``mIoU``, ``fwIoU``, and per
    class ``IoU.<class>`` and ``Acc.<class>`` (also logged as a table). The summed confusion
    matrix is kept as ``last_confusion_matrix`` for :class:`ConfusionMatrixHook`.
    ``per_image_iou=True`` adds ``mIoU_img``, the mean over images of each image's own mean IoU:
    a different (and usually lower) number that some write-ups report; it is not the paper's.

    Distributed evaluation: each image's ``(n, n)`` confusion matrix is one entry of
    ``self.results``; :class:`BaseMetric` gathers those from every rank (and drops the copies a
    distributed sampler pads in) before :meth:`compute_metrics` sums them, so the result is the
    same for any number of ranks.

    Args:
        ignore_index: the void label; labels outside ``[0, num_classes)`` are dropped anyway.
        per_image_iou: also report the mean of per-image mean IoU as ``mIoU_img``.
        output_dir: if set, save each prediction there as ``<image name>.png`` (label values).
        format_only: only save predictions (test sets without ground truth).
        collect_device, prefix: see :class:`mmengine.evaluator.BaseMetric`.
        kwargs: accepted and ignored (mmseg's ``tools/test.py --out`` sets ``keep_results``).
    """

    default_prefix: Optional[str] = None

    def __init__(self,
                 ignore_index: int = 255,
                 per_image_iou: bool = False,
                 output_dir: Optional[str] = None,
                 format_only: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ignore_index = ignore_index
        self.per_image_iou = per_image_iou
        self.output_dir = output_dir
        self.format_only = format_only
        if self.output_dir and is_main_process():
            mkdir_or_exist(self.output_dir)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Append one ``(num_classes, num_classes)`` confusion matrix per image."""
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'].squeeze().cpu().numpy()
            if self.output_dir is not None:
                name = osp.splitext(osp.basename(sample['img_path']))[0]
                out = pred + 1 if sample.get('reduce_zero_label', False) else pred
                Image.fromarray(out.astype(np.uint8)).save(
                    osp.join(self.output_dir, f'{name}.png'))
            if self.format_only:
                continue
            label = sample['gt_sem_seg']['data'].squeeze().cpu().numpy().astype(np.int64)
            label[label == self.ignore_index] = -1
            self.results.append(confusion_matrix(pred, label, num_classes))

    def compute_metrics(self, results: List[np.ndarray]) -> Dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        if self.format_only:
            logger.info(f'predictions are saved to {self.output_dir}')
            return OrderedDict()
        if not results:
            raise ValueError('FCNMetric: no results to evaluate (empty evaluation set?)')
        hist = np.sum(results, axis=0)
        scores = hist_to_metrics(hist)
        metrics = OrderedDict(
            (key, float(scores[key]) * 100) for key in ('aAcc', 'mAcc', 'mIoU', 'fwIoU'))
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
            ', '.join(f'{k} {v:.2f}' for k, v in metrics.items()), logger=logger)
        for name, iou, acc in zip(self.dataset_meta['classes'], scores['IoU'], scores['Acc']):
            metrics[f'IoU.{name}'] = float(iou) * 100  # NaN: no ground truth and no prediction
            metrics[f'Acc.{name}'] = float(acc) * 100
        self.last_confusion_matrix = hist  # ConfusionMatrixHook writes it to the work dir
        return metrics
