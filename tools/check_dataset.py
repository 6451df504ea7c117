"""Check a config's datasets up front and list every bad file.

    python tools/check_dataset.py CONFIG [--splits train val test] [--workers N]
                                         [--cfg-options k=v ...]

For the train/val/test datasets of CONFIG, every listed image and label must exist and each
sample loads and passes the per-sample checks of training; then each split's labels are judged
as a whole, as before a training run (all void, binary masks saved as 0/255 or two grey
levels, colour labels: errors naming files and the converter command; classes without pixels:
warnings). Every bad file is printed as ``<path>: <problem>``; the exit status is 1 if any bad
file or error was found. The work is :func:`fcn_plugin.apis.check_dataset`.
"""
import argparse
import sys

from mmengine.config import DictAction

from fcn_plugin.apis import check_dataset
from fcn_plugin.utils.tool_errors import run_tool


def parse_args(argv=None):
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
        default=None,
        help='processes that load and check samples '
        '(default: the CPUs, at most 8)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='override config settings, key=value')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    result = check_dataset(
        args.config,
        args.splits,
        args.workers,
        args.cfg_options,
        log=lambda line: print(line, flush=True))
    return 0 if result.ok else 1


if __name__ == '__main__':
    sys.exit(run_tool(main, 'tools/check_dataset.py'))
