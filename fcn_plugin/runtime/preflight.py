"""Preflight: the config and data checks a run passes before its first iteration (and before
testing), with the key or file and the fix in each message. :class:`PreflightHook` runs them in
every runner; ``tools/check_dataset.py`` runs :func:`check_split` over every file.

- Config (:func:`check_config`): a top-level variable that did not reach its fields
  (:func:`~fcn_plugin.utils.config_vars.check_config_vars`); when training, every pretrained
  file (``init_cfg=dict(type='Pretrained', checkpoint=...)``, ``pretrained=``) exists; each
  head's ``in_channels`` equals the channels of the backbone outputs its ``in_index`` selects;
  ``decode_head.num_classes`` equals the number of classes of each dataset. Each failure raises
  :class:`~fcn_plugin.utils.config_vars.ConfigError`.
- Data (:func:`check_split`): the label values of each split judged as a whole
  (:func:`~fcn_plugin.datasets.label_checks.analyze_labels`): errors for a split whose labels
  are all void, that hold only 0 and 255 (binary masks saved as 0/255: 255 is void, so the
  foreground would be ignored, the loss ~0 and the mIoU 100) or two grey levels, colour
  labels, values outside the classes; warnings for classes without pixels, for samples listed
  more than once (:func:`~fcn_plugin.datasets.label_checks.duplicate_findings`) and for images
  and labels carrying an EXIF orientation tag other than 1
  (:func:`~fcn_plugin.datasets.label_checks.orientation_findings`: images are loaded turned as
  the tag says, labels as stored; a 180-degree turn passes every size check). Before a run it
  reads a bounded sample of the label files (and the headers of their images); ``full=True``
  loads and checks every sample, listing each bad file.
"""
import logging
import os
import os.path as osp
from typing import Iterator, List, NamedTuple, Optional, Tuple

import torch
from mmengine.dist import broadcast_object_list, get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ..datasets.label_checks import (BadDatasetError, LabelFinding, analyze_labels, count_labels,
                                     dataset_classes, dataset_image_orientation, duplicate_findings,
                                     leaf_datasets, orientation_findings)
from ..datasets.missing_files import NoSamplesError, file_problem, lists_nothing, missing_files
from ..datasets.scan import scan_dataset
from ..datasets.transforms import BadSampleError
from ..datasets.validated_dataset import ValidatedDataset
from ..utils.config_vars import ConfigError, check_config_vars
from .runner_state import built_datasets, is_training

PER_FILE = ('bad_values', 'colour')  # problems that ValidatedDataset(on_error='skip') skips


@HOOKS.register_module()
class PreflightHook(Hook):
    """Run the preflight checks (module doc) in ``before_run`` (priority ``HIGHEST``): model
    and data loaders are built, nothing is loaded or trained yet. The label check reads the
    splits this run uses (train and val when training, test when testing) on rank 0 and gives
    every rank its verdict.

    Args:
        max_files: label files read per split: all if there are at most this many, else this
            many spread evenly over the split.
        time_limit: seconds per split at most (a sample then), so that huge datasets start
            quickly.
    """

    priority = 'HIGHEST'

    def __init__(self, max_files: Optional[int] = 1000, time_limit: Optional[float] = 30.0):
        self.max_files = max_files
        self.time_limit = time_limit

    def before_run(self, runner) -> None:
        datasets, training = built_datasets(runner), is_training(runner)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        check_config(runner.cfg, model, datasets, training)
        if not datasets:
            return
        result = [None]
        if get_rank() == 0:  # one scan, the same verdict on every process
            try:
                result = [('ok', self.check_labels(datasets))]
            except Exception as error:  # an unreadable dataset: the loaders will say why
                result = [('skip', f'{type(error).__name__}: {error}')]
        broadcast_object_list(result, src=0)
        status, payload = result[0]
        if status == 'skip':
            print_log(
                f'PreflightHook: label check skipped ({payload})',
                logger='current',
                level=logging.WARNING)
            return
        for finding in payload:
            if finding.level == 'warning':
                print_log(
                    f'PreflightHook: {finding.message}', logger='current', level=logging.WARNING)
        errors = [f for f in payload if f.level == 'error']
        if errors:
            raise BadDatasetError('bad data: ' + '\n'.join(f.message for f in errors))

    def check_labels(self, datasets: List[Tuple[str, object]]) -> List[LabelFinding]:
        findings, seen = [], []
        for key, dataset in datasets:
            report = check_split(
                key.replace('_dataloader', ''),
                dataset,
                max_files=self.max_files,
                time_limit=self.time_limit)
            if report.labels and sorted(report.labels) in seen:
                continue  # the same files as another loader
            if report.labels:
                seen.append(sorted(report.labels))
            findings += report.findings
        return findings


# ------------------------------------------------------------------------------ the data
class SplitReport(NamedTuple):
    """What :func:`check_split` found: the bad files (``full`` only), the split-level findings,
    the label files counted (``{path: {value: pixels}}``) and the samples in the split."""
    bad_files: List[BadSampleError]
    findings: List[LabelFinding]
    labels: dict
    samples: int


def check_split(name: str,
                dataset,
                full: bool = False,
                workers: int = 0,
                max_files: Optional[int] = 1000,
                time_limit: Optional[float] = 30.0) -> SplitReport:
    """Check one split of a built dataset (``name``: ``'train'``, ``'val'``...).

    ``full=False`` reads label files only (:func:`count_labels`: at most ``max_files`` and
    ``time_limit`` seconds; and the EXIF orientation from the header of each label's image).
    ``full=True`` loads every sample with the dataset's own loading transforms and checks it as
    in training, in ``workers`` processes, listing every missing or bad file; build the dataset
    lazily (``lazy_init=True``) so that a list naming missing files still loads
    (``check_files=False`` is set here). Both report samples listed more than once and files
    carrying an EXIF orientation tag. Raises ``FileNotFoundError`` if no list of samples can be
    loaded (a missing folder or split file; :class:`NoSamplesError` for an empty split file).
    """
    exif_tags: dict = {}
    if not full:
        labels, total = count_labels(dataset, max_files, time_limit, exif_tags)
        bad: List[BadSampleError] = []
        samples = total
    else:
        wrapper = dataset if isinstance(dataset, ValidatedDataset) else ValidatedDataset(
            dataset, lazy_init=True)
        inner = wrapper.dataset
        if hasattr(inner, 'check_files'):
            inner.check_files = False  # built lazily: nothing is loaded yet
        check_not_empty(inner)
        inner.full_init()
        infos = (inner.get_data_info(i) for i in range(len(inner)))
        bad = [BadSampleError(path, file_problem(path), i) for i, path in missing_files(infos)]
        dropped = {e.index for e in bad}
        labels, samples, total = {}, len(inner), None
        bad += scan_dataset(
            wrapper,
            indices=[i for i in range(samples) if i not in dropped],
            workers=workers,
            desc=name,
            label_counts=labels,
            exif_tags=exif_tags)
    classes, ignore = dataset_classes(dataset)
    findings = analyze_labels(labels,
                              len(classes) if classes else None, ignore, classes, name, total)
    if full:  # files with bad values are listed one by one
        findings = [f for f in findings if f.kind != 'bad_values']
    elif _skips_bad_samples(dataset):  # per-file problems are skipped there, by request
        findings = [f._replace(level='warning') if f.kind in PER_FILE else f for f in findings]
    findings += duplicate_findings(dataset, name)
    findings += orientation_findings(
        exif_tags.get('img_path', {}), exif_tags.get('seg_map_path', {}), name,
        dataset_image_orientation(dataset), total)
    return SplitReport(bad, findings, labels, samples)


def check_not_empty(dataset) -> None:
    """Raise :class:`NoSamplesError` naming the split file of a (not yet loaded) dataset that
    lists no name (mmseg's own datasets would fail with mmengine's ``ValueError: need at least
    one array to concatenate``; ours raise it themselves)."""
    for leaf in leaf_datasets(dataset):
        ann_file = getattr(leaf, 'ann_file', None)
        if ann_file and os.path.isfile(ann_file) and lists_nothing(ann_file):
            raise NoSamplesError(f'{type(leaf).__name__}: the split file {ann_file} lists no '
                                 'images (it is empty)')


def _skips_bad_samples(dataset) -> bool:
    if isinstance(dataset, ValidatedDataset):
        return dataset.on_error == 'skip' or _skips_bad_samples(dataset.dataset)
    inner = getattr(dataset, 'datasets', None)
    if isinstance(inner, (list, tuple)):
        return any(_skips_bad_samples(d) for d in inner)
    return False


def missing_folders(dataset_cfg: dict) -> str:
    """Which of a dataset config's folders / split file do not exist (for a bare assertion)."""
    root = dataset_cfg.get('data_root') or ''
    paths = [os.path.join(root, p) for p in (dataset_cfg.get('data_prefix') or {}).values() if p]
    if dataset_cfg.get('ann_file'):
        paths.append(os.path.join(root, dataset_cfg['ann_file']))
    missing = [p for p in paths if not os.path.exists(p)]
    return f'not found: {", ".join(missing)}' if missing else ''


# ---------------------------------------------------------------------------- the config
def check_config(cfg, model, datasets: List[Tuple[str, object]], training: bool) -> None:
    """The config checks of the module doc (``datasets``: ``(loader key, dataset)``)."""
    if cfg:
        check_config_vars(cfg)
        if training:
            check_pretrained_files(cfg.get('model'))
    check_channels(model)
    check_num_classes(model, datasets)


def pretrained_files(cfg, prefix: str = 'model') -> Iterator[Tuple[str, str]]:
    """``(key, path)`` for every ``init_cfg=dict(type='Pretrained', checkpoint=...)`` and
    ``pretrained=...`` in a model config, e.g. ``('model.backbone.init_cfg.checkpoint', p)``."""
    if isinstance(cfg, dict):
        if cfg.get('type') == 'Pretrained' and isinstance(cfg.get('checkpoint'), str):
            yield f'{prefix}.checkpoint', cfg['checkpoint']
        for key, value in cfg.items():
            if key == 'pretrained' and isinstance(value, str):
                yield f'{prefix}.pretrained', value
            elif isinstance(value, (dict, list, tuple)):
                yield from pretrained_files(value, f'{prefix}.{key}')
    elif isinstance(cfg, (list, tuple)):
        for i, value in enumerate(cfg):
            yield from pretrained_files(value, f'{prefix}[{i}]')


def check_pretrained_files(model_cfg: Optional[dict]) -> None:
    """Missing pretrained weights fail now, not after the data was set up."""
    for key, path in pretrained_files(model_cfg or {}):
        if '://' not in path and not osp.isfile(osp.expanduser(path)):
            raise ConfigError(
                f'{key} = {path!r}: file not found. Convert the weights first (VGG16: '
                'python tools/model_converters/vgg2mmseg.py SRC DST; an earlier FCN stage: its '
                'checkpoint), fix the path, or set the init_cfg to None to train from scratch.')


def _backbone_channels(model) -> Optional[List[int]]:
    """Channels of each backbone output: its ``out_channels``, else one tiny forward pass."""
    backbone = getattr(model, 'backbone', None)
    if backbone is None:
        return None
    channels = getattr(backbone, 'out_channels', None)
    if isinstance(channels, (list, tuple)) and all(isinstance(c, int) for c in channels):
        return list(channels)
    try:
        param = next(backbone.parameters())
        was_training = backbone.training
        backbone.eval()
        with torch.no_grad():
            outs = backbone(torch.zeros(1, 3, 64, 64, device=param.device, dtype=param.dtype))
        backbone.train(was_training)
    except Exception:  # an unusual backbone: leave the check to the forward pass
        return None
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return [o.shape[1] for o in outs]


def check_channels(model) -> None:
    """The heads' ``in_channels`` must be the backbone outputs they select (``in_index``)."""
    channels = _backbone_channels(model)
    if channels is None:
        return
    heads = [('model.decode_head', getattr(model, 'decode_head', None))]
    aux = getattr(model, 'auxiliary_head', None)
    if isinstance(aux, torch.nn.ModuleList):
        heads += [(f'model.auxiliary_head[{i}]', h) for i, h in enumerate(aux)]
    else:
        heads.append(('model.auxiliary_head', aux))
    for key, head in heads:
        if head is None or not hasattr(head, 'in_channels') or not hasattr(head, 'in_index'):
            continue
        in_index = head.in_index if isinstance(head.in_index, (list, tuple)) else [head.in_index]
        in_channels = head.in_channels if isinstance(head.in_channels,
                                                     (list, tuple)) else [head.in_channels]
        if any(not -len(channels) <= i < len(channels) for i in in_index):
            raise ConfigError(
                f'{key}.in_index = {list(in_index)} selects outputs the backbone does not '
                f'return: it returns {len(channels)} (channels {channels}; model.backbone.'
                'out_indices chooses them).')
        expected = [channels[i] for i in in_index]
        if list(in_channels) != expected:
            raise ConfigError(
                f'{key}.in_channels = {list(in_channels)} does not match the backbone outputs '
                f'it selects ({key}.in_index = {list(in_index)}): they have {expected} '
                f'channels (all outputs: {channels}). Set {key}.in_channels = {tuple(expected)}, '
                'or change model.backbone (base_channels, fc_channels, out_indices).')


def check_num_classes(model, datasets: List[Tuple[str, object]]) -> None:
    """``decode_head.num_classes`` must be the number of classes of every dataset used."""
    num_classes = getattr(getattr(model, 'decode_head', None), 'num_classes', None)
    if num_classes is None:
        return
    for name, dataset in datasets:
        classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        if classes is None or len(classes) == num_classes:
            continue
        kind = type(dataset).__name__
        inner = getattr(dataset, 'dataset', None)  # a dataset wrapper
        kind = f'{type(inner).__name__} in {kind}' if inner is not None else kind
        raise ConfigError(
            f'model.decode_head.num_classes = {num_classes}, but {name}.dataset ({kind}) has '
            f'{len(classes)} classes {tuple(classes)}. Set model.decode_head.num_classes = '
            f"{len(classes)}, or the dataset's metainfo=dict(classes=...).")
