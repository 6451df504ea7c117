"""Convert an ImageNet VGG16 state dict (torchvision key layout) into a VGG backbone checkpoint.

    python tools/model_converters/vgg2mmseg.py vgg16_from_caffe.pth pretrain/vgg16_caffe.pth

SRC: ``features.N`` / ``classifier.N`` keys, e.g. torchvision's ``vgg16-397923af.pth`` or
pytorch-fcn's ``vgg16_from_caffe.pth`` (the Caffe weights the reference starts from). fc6/fc7 are
reshaped into 7x7/1x1 convolutions; ImageNet's fc8 is dropped. Use DST as the backbone's
``init_cfg=dict(type='Pretrained', checkpoint=DST)``. Caffe weights expect BGR 0-255 input minus
the mean (configs/fcn*_vgg16_voc.py); torchvision's expect RGB normalised by the ImageNet
mean/std (configs/*tvweights*).
"""
import argparse

from fcn_plugin.converters.vgg_keys import vgg_to_backbone
from fcn_plugin.utils.checkpoint_safety import refuse_unloadable
from fcn_plugin.utils.io import atomic_torch_save, load_weights_only


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='VGG state dict in torchvision key layout')
    parser.add_argument('dst', help='output backbone checkpoint')
    args = parser.parse_args(argv)
    state_dict = vgg_to_backbone(load_weights_only(args.src, 'VGG checkpoint'))
    atomic_torch_save({'state_dict': state_dict, 'meta': {'converted_from': args.src}}, args.dst)
    print(f'wrote {len(state_dict)} tensors to {args.dst}')


if __name__ == '__main__':
    with refuse_unloadable():
        main()
