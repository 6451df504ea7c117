"""Datasets: VOC layout with early, clear errors on missing data; sample validation."""
from .toy_voc import ToyVOCDataset
from .validation import CheckSegFiles, CheckSegSample, ValidatedDataset
from .voc import FCNVOCDataset

__all__ = ['FCNVOCDataset', 'ToyVOCDataset', 'CheckSegFiles', 'CheckSegSample', 'ValidatedDataset']
