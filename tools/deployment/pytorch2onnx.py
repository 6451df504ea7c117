"""Export a segmentor to ONNX: raw image in, logits of exactly the image's size out.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT --out FILE.onnx [--opset N]
        [--shape H W] [--check-shapes [N]xHxW ...] [--cfg-options k=v ...]

The graph (``pip install -e .[onnx]`` installs onnx, onnxruntime and onnxscript) takes raw
0-255 pixels (``image``, float32 N x 3 x H x W, in the channel order the test pipeline loads;
the config's normalisation runs inside) and gives ``logits`` (N x num_classes x H x W) at exactly
the input's size, with N, H and W dynamic; see :mod:`fcn_plugin.apis.export`.

After saving, the tool runs the file with onnxruntime on ``--check-shapes`` (default: the traced
size, 375x500, 2x97x131 and 1x1) and compares with mmseg's own inference in PyTorch, printing
per size the max absolute difference, the max |logit| and their ratio. It exits non-zero if any
ratio exceeds ``--rtol`` (1e-4). A size the PyTorch model itself cannot take is reported and
skipped. The same from Python: ``fcn_plugin.apis.export_onnx(config, checkpoint, out, ...)``.
"""
import argparse
import sys

from mmengine.config import DictAction

from fcn_plugin.apis.export import ExportError, export_onnx

TOOL = 'tools/deployment/pytorch2onnx.py'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export a segmentor to ONNX (raw 0-255 image in, logits at its size out) '
        'and check it with onnxruntime')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument(
        '--opset',
        type=int,
        default=None,
        help="ONNX opset, 17 or more (default: torch's exporter's, 20 with "
        'torch 2.13)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=(500, 500),
        metavar=('H', 'W'),
        help='example input size for tracing (default 500 500); the graph '
        'takes any size')
    parser.add_argument(
        '--check-shapes',
        nargs='+',
        metavar='[N]xHxW',
        help='sizes to check with onnxruntime (default: the traced size, '
        '375x500, 2x97x131, 1x1)')
    parser.add_argument(
        '--rtol',
        type=float,
        default=1e-4,
        help='max allowed |onnx - torch| / max|logit| (default 1e-4)')
    parser.add_argument('--static-batch', action='store_true', help='fix the batch to 1')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='override config settings, key=value')
    parser.add_argument('--verbose', action='store_true', help="the exporter's progress")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        result = export_onnx(
            args.config,
            args.checkpoint,
            args.out,
            opset=args.opset,
            shape=tuple(args.shape),
            check_shapes=args.check_shapes,
            rtol=args.rtol,
            static_batch=args.static_batch,
            cfg_options=args.cfg_options,
            verbose=args.verbose)
    except ExportError as e:
        print(f'{TOOL}: {e}', file=sys.stderr)
        return 1
    print('\n'.join(result.lines()))
    if not result.ok:
        print(
            f'{TOOL}: onnxruntime does not match PyTorch within {args.rtol:g} x max|logit| '
            '(or no size could be checked)',
            file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
