"""Latency, throughput, memory and FLOPs of a segmentor, for inference and (--train) training.

    python tools/benchmark.py CONFIG [CHECKPOINT] [--shape H W] [--device cpu|cuda]
        [--batch-size N [N ...]] [--precision fp32|fp16|bf16] [--channels-last]
        [--cudnn-benchmark] [--repeat N] [--warmup N] [--train]
        [--compare plain,onnxruntime,openvino] [--compare-plain] [--onnx FILE] [--threads N]
        [--json OUT]

Times ``model.predict`` (mmseg's whole predict path) for each ``--batch-size`` on a fixed random
image, with ``--compare`` also the same network in other runtimes: ``plain`` (a plain PyTorch
module; ``--compare-plain`` is the same as ``--compare plain``), ``onnxruntime`` and
``openvino`` (on the model's ONNX export; optional extras, a missing one is reported and
skipped), interleaved in rounds with predict, with a ratio table at the end (times relative to
predict's, peak memory, agreement of the logits); with ``--train`` one training step.
Prints median and p90 latency, images/s, the network's FLOPs, GFLOP/s and peak memory ("+x":
its excess over the memory in use before the run); ``--json`` also writes the figures. What is
timed and how memory is measured: :mod:`fcn_plugin.apis.benchmarking`; the same from Python:
``fcn_plugin.apis.benchmark(config, ...)``, which returns the figures.
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmengine.config import DictAction

from fcn_plugin.apis.bench_peers import parse_compare
from fcn_plugin.apis.benchmarking import BenchmarkError, benchmark
from fcn_plugin.utils.config_vars import ConfigError
from fcn_plugin.utils.inference_options import add_inference_args

TOOL = 'tools/benchmark.py'


def compare_list(text):
    """``--compare``'s value: the runtimes, or argparse's one-line error."""
    try:
        return parse_compare(text)
    except BenchmarkError as e:
        raise argparse.ArgumentTypeError(str(e).replace('--compare: ', '')) from None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Benchmark a segmentor (speed, memory, FLOPs)')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        default=None,
        help='checkpoint (optional: without it, initialised weights)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=[500, 500],
        metavar=('H', 'W'),
        help='input height and width (default 500 500, a VOC-sized image)')
    parser.add_argument(
        '--batch-size',
        type=int,
        nargs='+',
        default=[1],
        help='images per run; several values make a sweep (default 1)')
    parser.add_argument(
        '--device',
        choices=['cpu', 'cuda'],
        default=None,
        help='default: cuda if available, else cpu')
    parser.add_argument('--repeat', type=int, default=5, help='timed runs (default 5)')
    parser.add_argument(
        '--warmup',
        type=int,
        default=1,
        help='untimed runs first, the first one counting FLOPs (default 1)')
    parser.add_argument('--train', action='store_true', help='also time one training step')
    parser.add_argument(
        '--compare',
        type=compare_list,
        default=[],
        metavar='RUNTIMES',
        help='also time these runtimes, comma-separated: plain (a plain PyTorch module with the '
        'same weights), onnxruntime, openvino (on the ONNX export; CPU, fp32); a missing one is '
        'skipped')
    parser.add_argument('--compare-plain', action='store_true', help='the same as --compare plain')
    parser.add_argument(
        '--onnx',
        default=None,
        metavar='FILE',
        help='for onnxruntime/openvino: this export of the same config and checkpoint (e.g. the '
        'deployed file) instead of exporting the model')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch.set_num_threads (CPU); default: torch\'s choice')
    parser.add_argument(
        '--cudnn-benchmark',
        action='store_true',
        help='torch.backends.cudnn.benchmark (sizes repeat here)')
    add_inference_args(parser)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default=None, help='also write the figures to this JSON file')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='override config settings, key=value')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        figures = benchmark(
            args.config,
            args.checkpoint,
            shape=args.shape,
            batch_sizes=args.batch_size,
            device=args.device,
            repeat=args.repeat,
            warmup=args.warmup,
            train=args.train,
            compare_plain=args.compare_plain,
            compare=args.compare,
            threads=args.threads,
            cudnn_benchmark=args.cudnn_benchmark,
            precision=args.precision,
            channels_last=args.channels_last,
            seed=args.seed,
            cfg_options=args.cfg_options,
            onnx_file=args.onnx)
    except (BenchmarkError, ConfigError) as e:
        print(f'{TOOL}: {e}', file=sys.stderr)
        return 1
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(figures, f, indent=2)
        print(f'figures written to {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
