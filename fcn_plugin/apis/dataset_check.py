"""Check a config's datasets up front and list every bad file (``tools/check_dataset.py``)."""
import copy
import os
from typing import Callable, Dict, NamedTuple, Optional, Sequence

from mmengine.registry import init_default_scope

from ..datasets.label_checks import dataset_classes
from ..runtime.preflight import SplitReport, check_split, missing_folders
from ..utils.config_vars import load_config


class DatasetCheck(NamedTuple):
    """What :func:`check_dataset` found: bad files and splits whose labels cannot be right, in
    all; ``splits`` maps each split checked to its report (``None``: it could not be read)."""
    bad_files: int
    label_errors: int
    splits: Dict[str, Optional[SplitReport]]

    @property
    def ok(self) -> bool:
        return not self.bad_files and not self.label_errors


def _lazy(dataset_cfg: dict) -> dict:
    """The dataset config with ``lazy_init=True`` on the wrapper and the dataset inside."""
    dataset_cfg = copy.deepcopy(dataset_cfg)
    dataset_cfg['lazy_init'] = True
    if dataset_cfg.get('type') == 'ValidatedDataset':
        dataset_cfg['dataset'] = dict(dataset_cfg['dataset'], lazy_init=True)
    return dataset_cfg


def check_dataset(config: str,
                  splits: Sequence[str] = ('train', 'val', 'test'),
                  workers: Optional[int] = None,
                  cfg_options: Optional[dict] = None,
                  log: Callable[[str], None] = print) -> DatasetCheck:
    """Check the datasets of ``config``'s data loaders (each distinct one once).

    Every listed image and label must exist, and each sample is loaded by the dataset's own
    loading transforms and checked as in training (:mod:`fcn_plugin.datasets.transforms`):
    whole JPEG/PNG files, headers within the pixel limit (checked before anything is decoded),
    decodable, labels single-channel with values in ``0..num_classes-1`` or 255, label and image
    of the same size; then each split's labels as a whole, as before a training run
    (:func:`fcn_plugin.runtime.preflight.check_split`): all void, 0/255 binary masks, grey
    levels, colour labels (errors), classes without pixels, samples listed more than once, images
    and labels carrying an EXIF orientation tag (warnings). Samples are loaded in
    ``workers`` processes (default: the CPUs, at most 8), with a progress bar; what is found
    is reported line by line through ``log`` (``<path>: <problem>`` per bad file).
    """
    if not os.path.isfile(config):
        raise FileNotFoundError(f'config file {config} does not exist')
    workers = min(8, os.cpu_count() or 1) if workers is None else workers
    cfg = load_config(config, cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    seen, reports, bad, label_errors = [], {}, 0, 0
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader or 'dataset' not in loader:
            continue
        dataset_cfg = loader['dataset'].to_dict() if hasattr(loader['dataset'],
                                                             'to_dict') else dict(loader['dataset'])
        if dataset_cfg in seen:
            log(f'{split}: same dataset as above')
            continue
        seen.append(dataset_cfg)
        reports[split] = report = _check(split, dataset_cfg, workers, log)
        if report is None:
            bad += 1
            continue
        bad += len(report.bad_files)
        label_errors += sum(f.level == 'error' for f in report.findings)
    if bad:
        log(f'{bad} bad file(s): fix or remove them (or drop them from the split files), or '
            "train with dataset=dict(type='ValidatedDataset', on_error='skip', ...).")
    if label_errors:
        log(f'{label_errors} split(s) with labels that cannot be right: convert the masks as '
            'shown above (tools/dataset_converters/masks2labels.py).')
    return DatasetCheck(bad, label_errors, reports)


def _check(name: str, dataset_cfg: dict, workers: int, log) -> Optional[SplitReport]:
    """Check one split and report what was found; None if it cannot be read."""
    from mmseg.registry import DATASETS
    inner = dataset_cfg.get('dataset', dataset_cfg)
    try:
        built = DATASETS.build(_lazy(dataset_cfg))
    except Exception as error:  # e.g. PascalVOCDataset asserts that its folders exist
        log(f'{name}: the dataset cannot be built ({type(error).__name__}: {error}'
            f'{missing_folders(inner) if not str(error) else ""}); check '
            f"data_root={inner.get('data_root')!r}, data_prefix and ann_file, or prepare the "
            'data first')
        return None
    leaf = getattr(built, 'dataset', built)
    classes, ignore = dataset_classes(built)
    log(f'{name}: {type(leaf).__name__} {getattr(leaf, "ann_file", "")} '
        f'({len(classes) if classes else None} classes, ignore {ignore})')
    try:
        report = check_split(name, built, full=True, workers=workers)
    except FileNotFoundError as error:  # no list of samples: nothing else to check
        where = getattr(leaf, 'ann_file', '') or getattr(leaf, 'data_prefix', {}).get(
            'img_path', '?')
        log(f'  {where}: {error}')
        log(f'{name}: 1 bad file(s)')
        return None
    for error in report.bad_files:
        log(f'  {error.path}: {error.problem}')
    # the split as a whole: all void, 0/255 binary masks, grey levels, classes without pixels
    for finding in report.findings:
        log(f'{name}: {finding.level}: {finding.message}')
    if report.bad_files:
        log(f'{name}: {len(report.bad_files)} bad file(s)')
    elif any(f.level == 'error' for f in report.findings):
        log(f'{name}: every sample loads, but the labels cannot be right (see above)')
    else:
        warnings = sum(f.level == 'warning' for f in report.findings)
        log(f'{name}: all {report.samples} samples OK' +
            (f' ({warnings} warning(s) above)' if warnings else ''))
    return report
