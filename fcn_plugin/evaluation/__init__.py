"""Evaluation: the FCN paper's metrics (``FCNMetric``) and how each evaluation is reported (its
confusion matrix as files, the test metrics JSON written once in distributed runs)."""
from .confusion_matrix_hook import ConfusionMatrixHook, write_confusion_matrix
from .fcn_metric import FCNMetric, confusion_matrix, hist_to_metrics
from .logger_hook import RankZeroLoggerHook

__all__ = [
    'FCNMetric', 'confusion_matrix', 'hist_to_metrics', 'ConfusionMatrixHook',
    'write_confusion_matrix', 'RankZeroLoggerHook'
]
