"""Train a segmentor: mmseg 1.2.2's ``tools/train.py`` command line, CPU or GPU unchanged.

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp] [--cfg-options k=v ...]
    bash tools/dist_train.sh CONFIG NPROC [args]        # torchrun, --launcher pytorch
    bash tools/slurm_train.sh PARTITION JOB CONFIG [args]

The work is :func:`fcn_plugin.apis.train` (what it adds to mmseg's script: its docstring).
"""
import argparse

from fcn_plugin.apis import train
from fcn_plugin.utils.launch import add_runner_args, parse_runner_args
from fcn_plugin.utils.tool_errors import run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        action='store_true',
        default=False,
        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (needs a GPU)')
    add_runner_args(parser)  # --cfg-options, --launcher, --local-rank
    return parse_runner_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    train(
        args.config,
        args.work_dir,
        resume=args.resume,
        amp=args.amp,
        cfg_options=args.cfg_options,
        launcher=args.launcher)
    return 0


if __name__ == '__main__':
    run_tool(main, 'tools/train.py')  # a user's error: one final line on stderr
