"""How far fp16/bf16 inference moves a trained model's predictions from fp32, on a test split.

    python tools/precision_agreement.py CONFIG CHECKPOINT [--precisions fp16 bf16]
        [--device cpu|cuda] [--cfg-options k=v ...] [--json OUT]

Runs the config's test dataloader once; each batch is predicted in fp32 and in every listed
precision (``AutocastEncoderDecoder.inference_precision``). Reports, per precision, the share of
labelled pixels whose predicted class equals fp32's, and the config's metrics (FCN's aAcc, mAcc,
mIoU, fwIoU) next to fp32's. fp16 autocast on the CPU is slow but numerically what a GPU does
(same storage format; GPU kernels may sum in another order). The same from Python:
``fcn_plugin.apis.precision_agreement(config, checkpoint, ...)``.
"""
import argparse
import json
import sys

import torch
from mmengine.config import DictAction

from fcn_plugin.apis.precision import precision_agreement
from fcn_plugin.utils.config_vars import ConfigError
from fcn_plugin.utils.inference_options import PRECISION_CHOICES

TOOL = 'tools/precision_agreement.py'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='fp16/bf16 predictions against fp32')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument(
        '--precisions', nargs='+', default=['fp16', 'bf16'], choices=PRECISION_CHOICES[1:])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--json', help='also write the figures to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        agreement = precision_agreement(
            args.config,
            args.checkpoint,
            precisions=args.precisions,
            device=args.device,
            cfg_options=args.cfg_options)
    except (FileNotFoundError, ConfigError) as e:
        print(f'{TOOL}: {e}', file=sys.stderr)
        return 1
    print('\n'.join(agreement.lines()))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(agreement.results, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
