"""Check a config's datasets up front and list every bad file.

    python tools/check_dataset.py CONFIG [--splits train val test] [--workers N]
                                         [--cfg-options k=v ...]

For the train/val/test datasets of CONFIG (each distinct one once), every listed image and label
must exist, and each sample is loaded by the dataset's own loading transforms and checked as in
training (``fcn_plugin.datasets.validation``): whole JPEG/PNG files, decodable, label
single-channel with values in ``0..num_classes-1`` or 255, label and image of the same size.
Only loading is done (no augmentation, no model), in ``--workers`` processes, with a progress bar.
Every bad file is printed as ``<path>: <problem>``. Then each split's labels are judged as a
whole (``fcn_plugin.datasets.validation.analyze_labels``): errors for a split whose labels are
all void, labels that hold only 0 and 255 (binary masks saved as 0/255: 255 is void, the
foreground would be ignored) or two grey levels, and colour labels, each naming files and the
converter command (``tools/dataset_converters/masks2labels.py``); warnings for classes without
pixels. The exit status is 1 if any bad file or error was found. A child config's top-level
``num_classes``/``classes``/``data_root`` reach the datasets (``fcn_plugin.utils.config_vars``).
"""
import argparse
import copy
import os
import sys
from typing import Tuple

from _bootstrap import import_plugin  # first: it quiets the pkg_resources warning

from mmengine.config import DictAction
from mmengine.registry import init_default_scope

import_plugin()

from fcn_plugin.datasets.validation import (BadSampleError, ValidatedDataset,  # noqa: E402
                                            analyze_labels, scan_dataset)
from fcn_plugin.utils.config_vars import load_config  # noqa: E402
from mmseg.registry import DATASETS  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Check the datasets of a config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--splits', nargs='+', default=['train', 'val', 'test'],
                        choices=['train', 'val', 'test'], help='which data loaders to check')
    parser.add_argument('--workers', type=int, default=min(8, os.cpu_count() or 1),
                        help='processes that load and check samples')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args()


def lazy(dataset_cfg: dict) -> dict:
    """The dataset config with ``lazy_init=True`` on the wrapper and the dataset inside."""
    dataset_cfg = copy.deepcopy(dataset_cfg)
    dataset_cfg['lazy_init'] = True
    if dataset_cfg.get('type') == 'ValidatedDataset':
        dataset_cfg['dataset'] = dict(dataset_cfg['dataset'], lazy_init=True)
    return dataset_cfg


def list_samples(wrapper: ValidatedDataset) -> list:
    """Load the dataset's list of samples; return the missing files as errors.

    A dataset that refuses to load a list with missing files (``FCNVOCDataset`` raises at
    build time, naming the first) is given its list without them, so that all of them are
    reported and the remaining samples are still checked.
    """
    dataset = wrapper.dataset
    try:
        dataset.full_init()
    except FileNotFoundError as error:
        from mmseg.datasets import BaseSegDataset
        split_file = getattr(dataset, 'ann_file', '')
        if not isinstance(dataset, BaseSegDataset) or (split_file and
                                                       not os.path.isfile(split_file)):
            return [BadSampleError(split_file or '?', str(error))]
        try:  # e.g. a missing image folder: nothing to list
            listed = BaseSegDataset.load_data_list(dataset)
        except (FileNotFoundError, AssertionError):
            listed = []
        complete = [info for info in listed
                    if all(os.path.isfile(p) for p in (info['img_path'],
                                                       info.get('seg_map_path')) if p)]
        missing = [BadSampleError(p, 'file not found')
                   for info in listed
                   for p in (info['img_path'], info.get('seg_map_path'))
                   if p and not os.path.isfile(p)]
        if not missing:  # a missing folder, no image with the suffix...: the dataset's words
            return [BadSampleError(split_file or dataset.data_prefix.get('img_path', '?'),
                                   str(error))]
        if complete:  # check the rest (else nothing is left: the caller stops here)
            dataset.load_data_list = lambda: complete  # this instance only
            dataset.full_init()
        return missing
    return [BadSampleError(p, 'file not found', i) for i in range(len(dataset))
            for p in (dataset.get_data_info(i).get(k) for k in ('img_path', 'seg_map_path'))
            if p and not os.path.isfile(p)]


def missing_paths(cfg: dict) -> str:
    """Which of a dataset config's folders / split file do not exist (for a bare assertion)."""
    root = cfg.get('data_root') or ''
    paths = [os.path.join(root, p) for p in (cfg.get('data_prefix') or {}).values() if p]
    if cfg.get('ann_file'):
        paths.append(os.path.join(root, cfg['ann_file']))
    missing = [p for p in paths if not os.path.exists(p)]
    return f'not found: {", ".join(missing)}' if missing else ''


def check(name: str, dataset_cfg: dict, workers: int) -> Tuple[int, int]:
    """Check one split; returns (bad files, split-level label errors)."""
    try:
        built = DATASETS.build(lazy(dataset_cfg))
    except Exception as error:  # e.g. PascalVOCDataset asserts that its folders exist
        inner = dataset_cfg.get('dataset', dataset_cfg)
        print(f'{name}: the dataset cannot be built ({type(error).__name__}: {error}'
              f'{missing_paths(inner) if not str(error) else ""}); check '
              f"data_root={inner.get('data_root')!r}, data_prefix and ann_file, or prepare the "
              'data first', flush=True)
        return 1, 0
    wrapper = built if isinstance(built, ValidatedDataset) else ValidatedDataset(
        built, lazy_init=True)
    inner = wrapper.dataset
    print(f'{name}: {type(inner).__name__} {getattr(inner, "ann_file", "")} '
          f'({wrapper.num_classes} classes, ignore {wrapper.ignore_index})', flush=True)
    bad = list_samples(wrapper)
    if not getattr(inner, '_fully_initialized', True):  # no sample can be loaded
        for error in bad:
            print(f'  {error.path}: {error.problem}')
        print(f'{name}: {len(bad)} bad file(s)', flush=True)
        return len(bad), 0
    missing = {e.path for e in bad}
    indices = [i for i in range(len(inner))
               if not any(inner.get_data_info(i).get(k) in missing
                          for k in ('img_path', 'seg_map_path'))]
    counts = {}
    bad += scan_dataset(wrapper, indices=indices, workers=workers, desc=name, label_counts=counts)
    for error in bad:
        print(f'  {error.path}: {error.problem}')
    # the split as a whole: all void, 0/255 binary masks, grey levels, classes without pixels
    classes = inner.metainfo.get('classes')
    findings = [f for f in analyze_labels(counts, wrapper.num_classes, wrapper.ignore_index,
                                          classes, name)
                if f.kind != 'bad_values']  # those files are listed one by one above
    for finding in findings:
        print(f'{name}: {finding.level}: {finding.message}')
    errors = sum(f.level == 'error' for f in findings)
    if bad:
        print(f'{name}: {len(bad)} bad file(s)', flush=True)
    elif errors:
        print(f'{name}: every sample loads, but the labels cannot be right (see above)',
              flush=True)
    else:
        print(f'{name}: all {len(inner)} samples OK', flush=True)
    return len(bad), errors


def main():
    args = parse_args()
    if not os.path.isfile(args.config):
        raise SystemExit(f'tools/check_dataset.py: config file {args.config} does not exist')
    cfg = load_config(args.config, args.cfg_options)  # child configs' variables passed on
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    seen, bad, label_errors = [], 0, 0
    for split in args.splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader or 'dataset' not in loader:
            continue
        dataset_cfg = loader['dataset'].to_dict() if hasattr(
            loader['dataset'], 'to_dict') else dict(loader['dataset'])
        if dataset_cfg in seen:
            print(f'{split}: same dataset as above')
            continue
        seen.append(dataset_cfg)
        files, errors = check(split, dataset_cfg, args.workers)
        bad, label_errors = bad + files, label_errors + errors
    if bad:
        print(f'{bad} bad file(s): fix or remove them (or drop them from the split files), or '
              "train with dataset=dict(type='ValidatedDataset', on_error='skip', ...).")
    if label_errors:
        print(f'{label_errors} split(s) with labels that cannot be right: convert the masks as '
              'shown above (tools/dataset_converters/masks2labels.py).')
    sys.exit(1 if bad or label_errors else 0)


if __name__ == '__main__':
    main()
