"""Datasets: VOC layout and your own folders of images and label PNGs, with early, clear errors
on missing data; sample and split-level label validation; a sampler that a resumed run starts at
its position without loading the skipped data."""
from .custom import CustomSegDataset
from .samplers import ResumableInfiniteSampler
from .toy_voc import ToyVOCDataset
from .validation import CheckSegFiles, CheckSegSample, ValidatedDataset
from .voc import FCNVOCDataset

__all__ = [
    'CustomSegDataset', 'FCNVOCDataset', 'ToyVOCDataset', 'CheckSegFiles', 'CheckSegSample',
    'ValidatedDataset', 'ResumableInfiniteSampler'
]
