"""Check a config's datasets up front and list every bad file.

    python tools/check_dataset.py CONFIG [--splits train val test] [--workers N]
                                         [--cfg-options k=v ...]

For the train/val/test datasets of CONFIG (each distinct one once), every listed image and label
must exist, and each sample is loaded by the dataset's own loading transforms and checked as in
training (``fcn_plugin.datasets.validation``): whole JPEG/PNG files, decodable, label
single-channel with values in ``0..num_classes-1`` or 255, label and image of the same size.
Only loading is done (no augmentation, no model), in ``--workers`` processes, with a progress bar.
Every bad file is printed as ``<path>: <problem>``; the exit status is 1 if any was found.
"""
import argparse
import copy
import os
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

from _bootstrap import import_plugin

import_plugin()

from fcn_plugin.datasets.validation import (BadSampleError, ValidatedDataset,  # noqa: E402
                                            scan_dataset)
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
        complete = [info for info in BaseSegDataset.load_data_list(dataset)
                    if all(os.path.isfile(p) for p in (info['img_path'],
                                                       info.get('seg_map_path')) if p)]
        missing = [BadSampleError(p, 'file not found')
                   for info in BaseSegDataset.load_data_list(dataset)
                   for p in (info['img_path'], info.get('seg_map_path'))
                   if p and not os.path.isfile(p)]
        dataset.load_data_list = lambda: complete  # this instance only
        dataset.full_init()
        return missing
    return [BadSampleError(p, 'file not found', i) for i in range(len(dataset))
            for p in (dataset.get_data_info(i).get(k) for k in ('img_path', 'seg_map_path'))
            if p and not os.path.isfile(p)]


def check(name: str, dataset_cfg: dict, workers: int) -> int:
    try:
        built = DATASETS.build(lazy(dataset_cfg))
    except Exception as error:  # e.g. PascalVOCDataset asserts that its folders exist
        inner = dataset_cfg.get('dataset', dataset_cfg)
        print(f'{name}: the dataset cannot be built ({type(error).__name__}: {error}); check '
              f"data_root={inner.get('data_root')!r}, data_prefix and ann_file, or prepare the "
              'data first', flush=True)
        return 1
    wrapper = built if isinstance(built, ValidatedDataset) else ValidatedDataset(
        built, lazy_init=True)
    inner = wrapper.dataset
    print(f'{name}: {type(inner).__name__} {getattr(inner, "ann_file", "")} '
          f'({wrapper.num_classes} classes, ignore {wrapper.ignore_index})', flush=True)
    bad = list_samples(wrapper)
    missing = {e.path for e in bad}
    indices = [i for i in range(len(inner))
               if not any(inner.get_data_info(i).get(k) in missing
                          for k in ('img_path', 'seg_map_path'))]
    bad += scan_dataset(wrapper, indices=indices, workers=workers, desc=name)
    for error in bad:
        print(f'  {error.path}: {error.problem}')
    print(f'{name}: {len(bad)} bad file(s)' if bad else
          f'{name}: all {len(inner)} samples OK', flush=True)
    return len(bad)


def main():
    args = parse_args()
    if not os.path.isfile(args.config):
        raise SystemExit(f'tools/check_dataset.py: config file {args.config} does not exist')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    seen, bad = [], 0
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
        bad += check(split, dataset_cfg, args.workers)
    if bad:
        print(f'{bad} bad file(s): fix or remove them (or drop them from the split files), or '
              "train with dataset=dict(type='ValidatedDataset', on_error='skip', ...).")
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
