"""Test (and evaluate) a segmentor: mmseg 1.2.2's ``tools/test.py`` command line.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR] [--show-dir DIR] [--tta]
        [--precision fp32|fp16|bf16] [--channels-last]
    bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [args]     # torchrun, --launcher pytorch
    bash tools/slurm_test.sh PARTITION JOB CONFIG CHECKPOINT [args]

The work is :func:`fcn_plugin.apis.test`; as ``tools/train.py`` it runs on the CPU without
edits when there is no CUDA (``gloo`` process group, DDP without device ids), ``nccl`` on GPUs.
"""
import argparse

from fcn_plugin.apis import test
from fcn_plugin.utils.inference_options import add_inference_args
from fcn_plugin.utils.launch import add_runner_args, parse_runner_args
from fcn_plugin.utils.tool_errors import run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='MMSeg test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help=('if specified, the evaluation metric results will be dumped'
              'into the directory as json'))
    parser.add_argument(
        '--out', type=str, help='The directory to save output prediction for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. '
        'If specified, it will be automatically saved '
        'to the work_dir/timestamp/show_dir')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--tta', action='store_true', help='Test time augmentation')
    add_inference_args(parser)
    add_runner_args(parser)  # --cfg-options, --launcher, --local-rank
    return parse_runner_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    test(
        args.config,
        args.checkpoint,
        args.work_dir,
        out=args.out,
        show=args.show,
        show_dir=args.show_dir,
        wait_time=args.wait_time,
        tta=args.tta,
        precision=args.precision,
        channels_last=args.channels_last,
        cfg_options=args.cfg_options,
        launcher=args.launcher)
    return 0


if __name__ == '__main__':
    run_tool(main, 'tools/test.py')  # a user's error: one final line on stderr
