"""Convert an ImageNet VGG16 state dict (torchvision key layout) into a VGG backbone checkpoint.

    python tools/model_converters/vgg2mmseg.py vgg16_from_caffe.pth pretrain/vgg16_caffe.pth

SRC: ``features.N`` / ``classifier.N`` keys, e.g. torchvision's ``vgg16-397923af.pth`` or
pytorch-fcn's ``vgg16_from_caffe.pth`` (the Caffe weights the reference starts from). fc6/fc7 are
reshaped into 7x7/1x1 convolutions; ImageNet's fc8 is dropped. Use DST as the backbone's
``init_cfg=dict(type='Pretrained', checkpoint=DST)``. Caffe weights expect BGR 0-255 input minus
the mean (configs/fcn*_vgg16_voc.py); torchvision's expect RGB normalised by the ImageNet
mean/std (configs/*tvweights*).
The work is :func:`fcn_plugin.apis.convert_weights.convert_vgg`; a missing, unsafe or damaged
SRC (``<ErrorClass>: <message>``) or one of another network (``vgg2mmseg: error: <message>``)
ends the tool with one line on stderr.
"""
import argparse
import sys

from fcn_plugin.apis.convert_weights import convert_vgg
from fcn_plugin.converters import ConversionError
from fcn_plugin.utils.checkpoint_safety import refuse_unloadable


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='VGG state dict in torchvision key layout')
    parser.add_argument('dst', help='output backbone checkpoint')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with refuse_unloadable():
        try:
            convert_vgg(args.src, args.dst, log=print)
        except ConversionError as error:
            sys.exit(f'vgg2mmseg: error: {error}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
