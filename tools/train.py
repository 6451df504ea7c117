"""Train a segmentor: mmseg 1.2.2's ``tools/train.py`` command line, CPU or GPU unchanged.

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp] [--cfg-options k=v ...]
    bash tools/dist_train.sh CONFIG NPROC [args]        # torchrun, --launcher pytorch
    bash tools/slurm_train.sh PARTITION JOB CONFIG [args]

Differences from mmseg's script, all automatic: ``fcn_plugin`` is imported (configs work even
without ``custom_imports``); distributed jobs use ``nccl`` with CUDA and ``gloo`` without, and
on a machine without CUDA the process group and the DDP wrapper are set up for the CPU
(:mod:`fcn_plugin.utils.launch`); a top-level ``--cfg-options`` variable that reaches no field
(``max_iters=...`` instead of ``train_cfg.max_iters=...``) is an error
(:mod:`fcn_plugin.utils.config_vars`); mmengine's checkpoint loaders are weights-only even
under ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` (``tools/_bootstrap.py``). Everything else is the
runner's (the plugin's hooks in ``default_hooks``), so mmseg's own script behaves the same.
"""
import argparse
import logging
import os.path as osp

import torch
from _bootstrap import import_plugin  # first: it quiets the pkg_resources warning
from mmengine.logging import print_log
from mmengine.runner import Runner

import_plugin()

from mmseg.registry import RUNNERS  # noqa: E402

from fcn_plugin.utils.config_vars import load_config  # noqa: E402
from fcn_plugin.utils.launch import parse_runner_args  # noqa: E402
from fcn_plugin.utils.launch import add_runner_args, prepare_distributed
from fcn_plugin.utils.tool_errors import run_tool  # noqa: E402


def parse_args():
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
    return parse_runner_args(parser)


def main():
    args = parse_args()

    if not osp.isfile(args.config):
        raise SystemExit(f'tools/train.py: config file {args.config} does not exist')
    cfg = load_config(args.config, args.cfg_options)

    # work_dir is determined in this priority: CLI > segment in file > filename
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp is True:
        if not torch.cuda.is_available():
            raise SystemExit('tools/train.py: --amp needs a GPU (mmengine\'s AmpOptimWrapper '
                             'only runs on CUDA/NPU/MLU/MUSA); on the CPU run without --amp')
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper == 'AmpOptimWrapper':
            print_log(
                'AMP training is already enabled in your config.',
                logger='current',
                level=logging.WARNING)
        else:
            assert optim_wrapper == 'OptimWrapper', (
                '`--amp` is only supported when the optimizer wrapper type is '
                f'`OptimWrapper` but got {optim_wrapper}.')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    # with load_from also set (a stage started from the previous one), --resume continues this
    # work dir's checkpoints once it has some: default_hooks.load_policy
    cfg.resume = args.resume

    # nccl/gloo, and on CPU-only machines the process group and DDP wrapper
    prepare_distributed(cfg, args.launcher)

    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)

    runner.train()


if __name__ == '__main__':
    run_tool(main, 'tools/train.py')  # a user's error: one final line on stderr
