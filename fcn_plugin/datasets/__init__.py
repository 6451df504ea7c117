"""Datasets: VOC layout and your own folders of images and label PNGs, with early, clear errors
on missing data (:mod:`.missing_files`); per-file checks before decoding (:mod:`.file_checks`:
truncated files, decompression bombs), per-sample checks (:mod:`.transforms`), a wrapper that
raises or skips bad samples (:mod:`.validated_dataset`), a parallel scan of a whole dataset
(:mod:`.scan`) and split-level label checks (:mod:`.label_checks`)."""
from .custom import CustomSegDataset
from .label_checks import BadDatasetError
from .missing_files import NoSamplesError
from .toy_voc import ToyVOCDataset
from .transforms import BadSampleError, CheckSegFiles, CheckSegSample
from .validated_dataset import ValidatedDataset
from .voc import FCNVOCDataset

__all__ = [
    'CustomSegDataset', 'FCNVOCDataset', 'ToyVOCDataset', 'CheckSegFiles', 'CheckSegSample',
    'ValidatedDataset', 'BadSampleError', 'BadDatasetError', 'NoSamplesError'
]
