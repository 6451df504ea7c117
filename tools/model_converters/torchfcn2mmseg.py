"""Convert a pytorch-fcn (torchfcn) FCN32s/16s/8s/8sAtOnce checkpoint into an mmseg checkpoint.

    python tools/model_converters/torchfcn2mmseg.py fcn8s_from_caffe.pth checkpoints/fcn8s.pth

SRC is a plain state dict (the released ``fcn*_from_caffe.pth``) or a pytorch-fcn trainer
checkpoint (``model_state_dict``). DST loads with ``mmseg.apis.init_model(CONFIG, DST)`` for the
matching config (configs/fcn32s_vgg16_voc.py, fcn16s, fcn8s, or fcn8s-atonce: at-once has the
same layers as FCN-8s, so pick its config yourself) and gives the original network's logits.
The work is :func:`fcn_plugin.apis.convert_weights.convert_torchfcn`; a missing, unsafe or
damaged SRC (``<ErrorClass>: <message>``) or one of another network
(``torchfcn2mmseg: error: <message>``) ends the tool with one line on stderr.
"""
import argparse
import sys

from fcn_plugin.apis.convert_weights import convert_torchfcn
from fcn_plugin.converters import ConversionError
from fcn_plugin.utils.checkpoint_safety import refuse_unloadable


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='pytorch-fcn checkpoint')
    parser.add_argument('dst', help='output mmseg checkpoint')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with refuse_unloadable():
        try:
            convert_torchfcn(args.src, args.dst, log=print)
        except ConversionError as error:
            sys.exit(f'torchfcn2mmseg: error: {error}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
