"""Before the first iteration: label files that cannot be right stop the run, with the fix."""
import logging
from typing import List, Optional, Tuple

from mmengine.dist import broadcast_object_list, get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ..datasets.label_checks import (BadDatasetError, LabelFinding, analyze_labels, count_labels,
                                     dataset_classes)
from ..datasets.validated_dataset import ValidatedDataset
from .config_check_hook import _built_datasets


PER_FILE = ('bad_values', 'colour')  # problems that ValidatedDataset(on_error='skip') skips


def _skips_bad_samples(dataset) -> bool:
    if isinstance(dataset, ValidatedDataset):
        return dataset.on_error == 'skip' or _skips_bad_samples(dataset.dataset)
    inner = getattr(dataset, 'datasets', None)
    if isinstance(inner, (list, tuple)):
        return any(_skips_bad_samples(d) for d in inner)
    return False


@HOOKS.register_module()
class DataCheckHook(Hook):
    """At ``before_run`` (data loaders built, nothing trained yet), read the label files of each
    split the run uses (train and val when training, test when testing; labels only, no
    images) and judge them with :func:`fcn_plugin.datasets.label_checks.analyze_labels`:

    - errors stop the run with :class:`~fcn_plugin.datasets.label_checks.BadDatasetError`: a
      split whose labels are all void; labels that hold only 0 and 255 (binary masks saved as
      0/255: 255 is void, so the foreground would be ignored, the loss ~0 and the mIoU 100) or
      two grey levels; colour labels; values outside ``0..num_classes-1``/255. The message names
      files and the converter command (``tools/dataset_converters/masks2labels.py``);
    - warnings (logged): classes without pixels in a split, single files that look like 0/255
      masks; and bad values or colour labels in a dataset wrapped in
      ``ValidatedDataset(on_error='skip')`` (those samples are skipped).

    ``tools/check_dataset.py CONFIG`` does the same over every file (and loads the images too).

    Args:
        max_files: label files read per split: all if there are at most this many, else this
            many spread evenly over the split.
        time_limit: seconds per split at most (a sample then), so that huge datasets start
            quickly.
    """

    priority = 'VERY_HIGH'

    def __init__(self, max_files: Optional[int] = 1000, time_limit: Optional[float] = 30.0):
        self.max_files = max_files
        self.time_limit = time_limit

    def check(self, datasets: List[Tuple[str, object]]) -> List[LabelFinding]:
        findings: List[LabelFinding] = []
        seen = []
        for name, dataset in datasets:
            counts, total = count_labels(dataset, self.max_files, self.time_limit)
            key = sorted(counts)
            if not counts or key in seen:  # no labels, or the same files as another loader
                continue
            seen.append(key)
            classes, ignore = dataset_classes(dataset)
            found = analyze_labels(counts, len(classes) if classes else None, ignore, classes,
                                   name.replace('_dataloader', ''), total)
            if _skips_bad_samples(dataset):  # per-file problems are skipped there, by request
                found = [f._replace(level='warning') if f.kind in PER_FILE else f for f in found]
            findings += found
        return findings

    def before_run(self, runner) -> None:
        datasets = _built_datasets(runner)
        if not datasets:
            return
        result = [None]
        if get_rank() == 0:  # one scan, the same verdict on every process
            try:
                result = [('ok', self.check(datasets))]
            except Exception as error:  # an unreadable dataset: the loaders will say why
                result = [('skip', f'{type(error).__name__}: {error}')]
        broadcast_object_list(result, src=0)
        status, payload = result[0]
        if status == 'skip':
            print_log(f'DataCheckHook: label check skipped ({payload})', logger='current',
                      level=logging.WARNING)
            return
        for finding in payload:
            if finding.level == 'warning':
                print_log(f'DataCheckHook: {finding.message}', logger='current',
                          level=logging.WARNING)
        errors = [f for f in payload if f.level == 'error']
        if errors:
            raise BadDatasetError('bad data: ' + '\n'.join(f.message for f in errors))
