"""Datasets: VOC layout with early, clear errors on missing data; sample validation; a sampler
that a resumed run starts at its position without loading the skipped data."""
from .samplers import ResumableInfiniteSampler
from .toy_voc import ToyVOCDataset
from .validation import CheckSegFiles, CheckSegSample, ValidatedDataset
from .voc import FCNVOCDataset

__all__ = [
    'FCNVOCDataset', 'ToyVOCDataset', 'CheckSegFiles', 'CheckSegSample', 'ValidatedDataset',
    'ResumableInfiniteSampler'
]
