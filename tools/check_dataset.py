"""Check a config's datasets up front and list every bad file.

    python tools/check_dataset.py CONFIG [--splits train val test] [--workers N]
                                         [--cfg-options k=v ...]

For the train/val/test datasets of CONFIG (each distinct one once), every listed image and label
must exist, and each sample is loaded by the dataset's own loading transforms and checked as in
training (``fcn_plugin.datasets.transforms``): whole JPEG/PNG files, headers within the pixel
limit (``CheckSegFiles(max_pixels)``, 100 Mpixel by default: checked before anything is
decoded, so a decompression bomb costs no memory), decodable, label single-channel with values
in ``0..num_classes-1`` or 255, label and image of the same size; a symlink loop is named as one.
Only loading is done (no augmentation, no model), in ``--workers`` processes, with a progress bar.
Every bad file is printed as ``<path>: <problem>``. Then each split's labels are judged as a
whole (``fcn_plugin.runtime.preflight``, as before a training run): errors for a split whose
labels are all void, labels that hold only 0 and 255 (binary masks saved as 0/255: 255 is void, the
foreground would be ignored) or two grey levels, and colour labels, each naming files and the
converter command (``tools/dataset_converters/masks2labels.py``); warnings for classes without
pixels. The exit status is 1 if any bad file or error was found.
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

from mmseg.registry import DATASETS  # noqa: E402

from fcn_plugin.datasets.label_checks import dataset_classes  # noqa: E402
from fcn_plugin.runtime.preflight import check_split, missing_folders  # noqa: E402
from fcn_plugin.utils.config_vars import load_config  # noqa: E402
from fcn_plugin.utils.tool_errors import run_tool  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Check the datasets of a config')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--splits',
        nargs='+',
        default=['train', 'val', 'test'],
        choices=['train', 'val', 'test'],
        help='which data loaders to check')
    parser.add_argument(
        '--workers',
        type=int,
        default=min(8,
                    os.cpu_count() or 1),
        help='processes that load and check samples')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='override config settings, key=value')
    return parser.parse_args()


def lazy(dataset_cfg: dict) -> dict:
    """The dataset config with ``lazy_init=True`` on the wrapper and the dataset inside."""
    dataset_cfg = copy.deepcopy(dataset_cfg)
    dataset_cfg['lazy_init'] = True
    if dataset_cfg.get('type') == 'ValidatedDataset':
        dataset_cfg['dataset'] = dict(dataset_cfg['dataset'], lazy_init=True)
    return dataset_cfg


def check(name: str, dataset_cfg: dict, workers: int) -> Tuple[int, int]:
    """Check one split (:func:`fcn_plugin.runtime.preflight.check_split`, ``full=True``) and
    print what was found; returns (bad files, split-level label errors)."""
    inner = dataset_cfg.get('dataset', dataset_cfg)
    try:
        built = DATASETS.build(lazy(dataset_cfg))
    except Exception as error:  # e.g. PascalVOCDataset asserts that its folders exist
        print(
            f'{name}: the dataset cannot be built ({type(error).__name__}: {error}'
            f'{missing_folders(inner) if not str(error) else ""}); check '
            f"data_root={inner.get('data_root')!r}, data_prefix and ann_file, or prepare the "
            'data first',
            flush=True)
        return 1, 0
    leaf = getattr(built, 'dataset', built)
    classes, ignore = dataset_classes(built)
    print(
        f'{name}: {type(leaf).__name__} {getattr(leaf, "ann_file", "")} '
        f'({len(classes) if classes else None} classes, ignore {ignore})',
        flush=True)
    try:
        report = check_split(name, built, full=True, workers=workers)
    except FileNotFoundError as error:  # no list of samples: nothing else to check
        where = getattr(leaf, 'ann_file', '') or getattr(leaf, 'data_prefix', {}).get(
            'img_path', '?')
        print(f'  {where}: {error}')
        print(f'{name}: 1 bad file(s)', flush=True)
        return 1, 0
    for error in report.bad_files:
        print(f'  {error.path}: {error.problem}')
    # the split as a whole: all void, 0/255 binary masks, grey levels, classes without pixels
    for finding in report.findings:
        print(f'{name}: {finding.level}: {finding.message}')
    errors = sum(f.level == 'error' for f in report.findings)
    if report.bad_files:
        print(f'{name}: {len(report.bad_files)} bad file(s)', flush=True)
    elif errors:
        print(f'{name}: every sample loads, but the labels cannot be right (see above)', flush=True)
    else:
        print(f'{name}: all {report.samples} samples OK', flush=True)
    return len(report.bad_files), errors


def main():
    args = parse_args()
    if not os.path.isfile(args.config):
        raise SystemExit(f'tools/check_dataset.py: config file {args.config} does not exist')
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    seen, bad, label_errors = [], 0, 0
    for split in args.splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader or 'dataset' not in loader:
            continue
        dataset_cfg = loader['dataset'].to_dict() if hasattr(loader['dataset'],
                                                             'to_dict') else dict(loader['dataset'])
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
    run_tool(main, 'tools/check_dataset.py')  # a user's error: one final line on stderr
