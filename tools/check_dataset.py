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
whole (``fcn_plugin.datasets.label_checks.analyze_labels``): errors for a split whose labels are
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
from typing import List, Tuple

from _bootstrap import import_plugin  # first: it quiets the pkg_resources warning

from mmengine.config import DictAction
from mmengine.registry import init_default_scope

import_plugin()

from fcn_plugin.datasets.label_checks import analyze_labels  # noqa: E402
from fcn_plugin.datasets.missing_files import file_problem, missing_files  # noqa: E402
from fcn_plugin.datasets.scan import scan_dataset  # noqa: E402
from fcn_plugin.datasets.transforms import BadSampleError  # noqa: E402
from fcn_plugin.datasets.validated_dataset import ValidatedDataset  # noqa: E402
from fcn_plugin.utils.config_vars import load_config  # noqa: E402
from fcn_plugin.utils.tool_errors import run_tool  # noqa: E402
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


def list_missing(dataset) -> List[BadSampleError]:
    """Load the dataset's list of samples and return its missing files, one error each.

    Datasets that refuse a list naming missing files (``FCNVOCDataset``, ``CustomSegDataset``)
    are built with ``check_files=False`` so that all of them are listed (by
    ``fcn_plugin.datasets.missing_files``, as the datasets do) and the other samples checked.
    Raises ``FileNotFoundError`` if no list can be loaded (a missing folder or split file).
    """
    if hasattr(dataset, 'check_files'):
        dataset.check_files = False  # built lazily: nothing is loaded yet
    dataset.full_init()
    infos = (dataset.get_data_info(i) for i in range(len(dataset)))
    return [BadSampleError(path, file_problem(path), i) for i, path in missing_files(infos)]


def missing_folders(cfg: dict) -> str:
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
              f'{missing_folders(inner) if not str(error) else ""}); check '
              f"data_root={inner.get('data_root')!r}, data_prefix and ann_file, or prepare the "
              'data first', flush=True)
        return 1, 0
    wrapper = built if isinstance(built, ValidatedDataset) else ValidatedDataset(
        built, lazy_init=True)
    inner = wrapper.dataset
    print(f'{name}: {type(inner).__name__} {getattr(inner, "ann_file", "")} '
          f'({wrapper.num_classes} classes, ignore {wrapper.ignore_index})', flush=True)
    try:
        bad = list_missing(inner)
    except FileNotFoundError as error:  # no list of samples: nothing else to check
        where = getattr(inner, 'ann_file', '') or getattr(inner, 'data_prefix', {}).get(
            'img_path', '?')
        print(f'  {where}: {error}')
        print(f'{name}: 1 bad file(s)', flush=True)
        return 1, 0
    dropped = {e.index for e in bad}
    indices = [i for i in range(len(inner)) if i not in dropped]
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
    run_tool(main, 'tools/check_dataset.py')  # a user's error: one final line on stderr
