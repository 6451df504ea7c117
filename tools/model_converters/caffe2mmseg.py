"""Convert a reference Caffe .caffemodel (FCN-32s/16s/8s/8s at-once, VGG16) to an mmseg checkpoint.

    python tools/model_converters/caffe2mmseg.py fcn8s-heavy-pascal.caffemodel checkpoints/fcn8s.pth
    python tools/model_converters/caffe2mmseg.py VGG_ILSVRC_16_layers.caffemodel \\
        pretrain/vgg16_caffe.pth

SRC: the fcn.berkeleyvision.org ``voc-fcn32s``/``voc-fcn16s``/``voc-fcn8s``/``voc-fcn8s-atonce``
weights, or ``VGG_ILSVRC_16_layers.caffemodel``. The binary NetParameter is read by
fcn_plugin.converters.caffe_proto (no Caffe, no protobuf), in the current ``layer`` or the
legacy V1 ``layers`` encoding. FCN nets give a full checkpoint (same keys as tools/model_converters/
torchfcn2mmseg.py: the Caffe layer names are pytorch-fcn's) that loads with
``mmseg.apis.init_model`` for the matching config (configs/fcn32s_vgg16_voc.py, fcn16s, fcn8s,
fcn8s-atonce); the VGG16 classifier gives a backbone checkpoint like vgg2mmseg.py (fc6/fc7
reshaped into 7x7/1x1 convolutions, fc8 dropped) for the backbone's ``init_cfg``.
``--variant`` (default ``auto``: detected from the layer names) makes the conversion fail unless
the net is that one; FCN-8s and FCN-8s at-once have the same parameters and are told apart by the
at-once net's ``scale_pool4``/``scale_pool3`` layers (fixed 0.01 and 1e-4, in the config).
The work is :func:`fcn_plugin.apis.convert_weights.convert_caffe`; a file it cannot convert ends
the tool with one line on stderr, ``caffe2mmseg: error: <message naming SRC>``.
"""
import argparse
import sys

from fcn_plugin.apis.convert_weights import convert_caffe
from fcn_plugin.converters import ConversionError
from fcn_plugin.converters.caffe_nets import VARIANTS
from fcn_plugin.converters.caffe_proto import CaffeModelError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='Caffe .caffemodel (binary NetParameter)')
    parser.add_argument('dst', help='output mmseg checkpoint')
    parser.add_argument(
        '--variant',
        choices=VARIANTS,
        default='auto',
        help='fail unless the net is this one (default: detect it)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        convert_caffe(args.src, args.dst, args.variant, log=print)
    except (CaffeModelError, ConversionError) as error:
        sys.exit(f'caffe2mmseg: error: {error}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
