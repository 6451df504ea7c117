"""A dataset wrapper: bad data fails early with one clear error naming the file, or is skipped
and counted (:class:`ValidatedDataset`, registered in mmseg's ``DATASETS``)."""
import copy
import logging
import os
from typing import Callable, List, Optional, Sequence

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmseg.registry import DATASETS

from .missing_files import describe_missing, file_problem, missing_files, sample_paths
from .scan import scan_dataset
from .transforms import (BadSampleError, CheckSegFiles, CheckSegSample, check_files_first,
                         set_image_orientation)


def _as_bad_sample(error: Exception, info: dict, index: int) -> BadSampleError:
    """Any loading error, as a :class:`BadSampleError` naming the sample's files."""
    if isinstance(error, BadSampleError):
        return error
    first = (str(error).strip().splitlines() or [''])[0]
    paths = sample_paths(info)
    named = [p for p in paths if p in str(error)]  # the loader named the file it failed on
    paths = named if len(named) == 1 else paths
    return BadSampleError(' / '.join(paths) or f'sample {index}',
                          f'could not be loaded ({type(error).__name__}: {first})', index)


def _insert_checks(transforms: list, num_classes: int, ignore_index: int) -> int:
    """Put CheckSegFiles first and CheckSegSample after the last loader; return its index."""
    if not any(isinstance(t, CheckSegFiles) for t in transforms):
        transforms.insert(0, CheckSegFiles())
    set_image_orientation(transforms)  # as the pipeline's image loader orients images
    checks = [i for i, t in enumerate(transforms) if isinstance(t, CheckSegSample)]
    if checks:
        for i in checks:
            if transforms[i].num_classes is None:
                transforms[i].num_classes = num_classes
        return checks[-1]
    loaders = [i for i, t in enumerate(transforms) if type(t).__name__.startswith('Load')]
    position = loaders[-1] + 1 if loaders else len(transforms)
    transforms.insert(position, CheckSegSample(num_classes, ignore_index))
    return position


@DATASETS.register_module()
class ValidatedDataset:
    """Wrap a segmentation dataset so that bad data fails early and clearly, or is skipped.

    Config::

        train_dataloader = dict(dataset=dict(
            type='ValidatedDataset', on_error='raise',   # or 'skip'
            dataset=dict(type='FCNVOCDataset', ...)))

    At build time every file the dataset lists must exist; the error names the missing files
    and the split file. Each sample is then checked by :class:`CheckSegFiles` and
    :class:`CheckSegSample` (inserted into the wrapped pipeline), and any error raised while
    loading it becomes one :class:`BadSampleError` naming its image and label.

    ``on_error='skip'`` (opt-in): missing files are dropped at build time and bad samples are
    skipped when met, each with a warning naming the file and the running count of skipped
    samples (per process: each data-loader worker counts its own). In training the next sample
    in order is used instead, deterministically (exact resume keeps working). In testing a
    substitute would be evaluated twice, so the whole dataset is checked at build time
    (``precheck='full'``) and the bad samples are left out of the evaluation.

    Args:
        dataset: the dataset config or object (a mmengine ``BaseDataset``).
        on_error: ``'raise'`` (default) or ``'skip'``.
        precheck: ``'files'`` (default): at build time, check that the files exist;
            ``'full'``: also load and check every sample at build time (what
            ``tools/check_dataset.py`` does), so that content errors too stop the run before
            its first iteration.
        lazy_init: as mmengine's datasets.
    """

    def __init__(self,
                 dataset,
                 on_error: str = 'raise',
                 precheck: str = 'files',
                 lazy_init: bool = False) -> None:
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"ValidatedDataset: on_error={on_error!r} must be 'raise' or 'skip'")
        if precheck not in ('files', 'full'):
            raise ValueError(f"ValidatedDataset: precheck={precheck!r} must be 'files' or 'full'")
        self.dataset: BaseDataset = DATASETS.build(dataset) if isinstance(dataset,
                                                                          dict) else dataset
        self.on_error = on_error
        self.test_mode = bool(getattr(self.dataset, 'test_mode', False))
        self.precheck = 'full' if (on_error == 'skip' and self.test_mode) else precheck
        self.ignore_index = getattr(self.dataset, 'ignore_index', 255)
        classes = self.dataset.metainfo.get('classes')
        self.num_classes = len(classes) if classes is not None else None
        self.check_index = _insert_checks(self.dataset.pipeline.transforms, self.num_classes,
                                          self.ignore_index)
        self.num_skipped = 0
        self._warned: set = set()
        self._indices: List[int] = []
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self.dataset.metainfo)

    @property
    def pipeline(self):
        return self.dataset.pipeline

    def full_init(self) -> None:
        if self._fully_initialized:
            return
        self.dataset.full_init()
        indices = list(range(len(self.dataset)))
        missing = missing_files(self.dataset.get_data_info(i) for i in indices)
        if missing:
            summary = describe_missing(missing,
                                       getattr(self.dataset, 'ann_file', '') or 'the dataset')
            if self.on_error == 'raise':
                raise BadSampleError(
                    missing[0][1], f'{file_problem(missing[0][1])} ({summary}). '
                    'Run python tools/check_dataset.py CONFIG to list every '
                    'bad file.')
            dropped = {i for i, _ in missing}
            indices = [i for i in indices if i not in dropped]
            self.num_skipped += len(dropped)
            self._warn(f'ValidatedDataset: skipping {len(dropped)} of {len(self.dataset)} '
                       f'samples: {summary}')
        if self.precheck == 'full':
            bad = scan_dataset(self, indices=indices, progress=False)
            if bad and self.on_error == 'raise':
                raise bad[0].__class__(
                    bad[0].path, bad[0].problem +
                    (f' (and {len(bad) - 1} more bad samples: run python tools/check_dataset.py '
                     'CONFIG to list them)' if len(bad) > 1 else ''), bad[0].index)
            for error in bad:
                self._skip(error)
            dropped = {e.index for e in bad}
            indices = [i for i in indices if i not in dropped]
        if not indices:
            raise BadSampleError(
                getattr(self.dataset, 'ann_file', '') or 'dataset', 'no usable sample left')
        self._indices = indices
        self._fully_initialized = True

    def __len__(self) -> int:
        self.full_init()
        return len(self._indices)

    def get_data_info(self, idx: int) -> dict:
        self.full_init()
        return self.dataset.get_data_info(self._indices[idx])

    def load_and_check(self,
                       dataset_index: int,
                       transforms: Optional[Sequence[Callable]] = None,
                       results: Optional[dict] = None):
        """Run the pipeline (or ``transforms``, from ``results`` if given) on sample
        ``dataset_index`` of the wrapped dataset; errors come out as :class:`BadSampleError`."""
        info = self.dataset.get_data_info(dataset_index)
        try:
            if transforms is None:
                return self._prepare(dataset_index, info)
            # headers before any decoding (a test pipeline starts with LoadImageFromFile)
            results = check_files_first(self.dataset.pipeline, info) if results is None \
                else results
            for transform in transforms:
                results = transform(results)
                if results is None:
                    return None
            return results
        except Exception as error:  # any loader's error, named after the sample's files
            raise _as_bad_sample(error, info, dataset_index) from error

    def _prepare(self, index: int, info: dict):
        """The wrapped dataset's ``prepare_data(index)``, the sample's files checked first."""
        dataset = self.dataset
        if getattr(dataset, 'checks_files_first', False):  # ours: prepare_data checks them
            return dataset.prepare_data(index)
        checked = check_files_first(dataset.pipeline, info)
        if type(dataset).prepare_data is BaseDataset.prepare_data:
            return dataset.pipeline(checked)
        return dataset.prepare_data(index)

    def __getitem__(self, idx: int) -> dict:
        self.full_init()
        count = len(self._indices)
        for attempt in range(count):
            index = self._indices[(idx + attempt) % count]
            try:
                data = self.load_and_check(index)
            except BadSampleError as error:
                if self.on_error == 'raise' or self.test_mode:
                    raise
                self._skip(error)
                continue
            if data is not None:
                return data
            if self.test_mode:
                raise BadSampleError(' / '.join(sample_paths(self.dataset.get_data_info(index))),
                                     'the test pipeline returned None', index)
        raise BadSampleError(
            getattr(self.dataset, 'ann_file', '') or 'dataset',
            f'all {count} samples are bad or were dropped by the pipeline')

    def _skip(self, error: BadSampleError) -> None:
        key = (error.index, error.path)
        if key in self._warned:
            return
        self._warned.add(key)
        self.num_skipped += 1
        where = '' if os.getpid() == _MAIN_PID else ' in this data-loader worker'
        self._warn(f'ValidatedDataset: skipped {error} ({self.num_skipped} bad samples skipped '
                   f'so far{where})')

    @staticmethod
    def _warn(message: str) -> None:
        print_log(message, logger='current', level=logging.WARNING)


_MAIN_PID = os.getpid()
