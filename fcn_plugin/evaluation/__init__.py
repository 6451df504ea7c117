"""Evaluation: the FCN paper's metrics (``FCNMetric``)."""
from .fcn_metric import FCNMetric, confusion_matrix, hist_to_metrics

__all__ = ['FCNMetric', 'confusion_matrix', 'hist_to_metrics']
