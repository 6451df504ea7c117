"""Convert a pytorch-fcn (torchfcn) FCN32s/16s/8s/8sAtOnce checkpoint into an mmseg checkpoint.

    python tools/model_converters/torchfcn2mmseg.py fcn8s_from_caffe.pth checkpoints/fcn8s.pth

SRC is a plain state dict (the released ``fcn*_from_caffe.pth``) or a pytorch-fcn trainer
checkpoint (``model_state_dict``). DST loads with ``mmseg.apis.init_model(CONFIG, DST)`` for the
matching config (configs/fcn32s_vgg16_voc.py, fcn16s, fcn8s, or fcn8s-atonce: at-once has the
same layers as FCN-8s, so pick its config yourself) and gives the original network's logits.
"""
import argparse

from mmseg.datasets import PascalVOCDataset

from fcn_plugin.converters.torchfcn_keys import torchfcn_to_mmseg
from fcn_plugin.utils.checkpoint_safety import refuse_unloadable
from fcn_plugin.utils.io import atomic_torch_save, load_weights_only


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='pytorch-fcn checkpoint')
    parser.add_argument('dst', help='output mmseg checkpoint')
    args = parser.parse_args(argv)
    checkpoint = load_weights_only(args.src, 'pytorch-fcn checkpoint')
    for key in ('model_state_dict', 'state_dict'):
        if isinstance(checkpoint, dict) and key in checkpoint:
            checkpoint = checkpoint[key]
    state_dict, variant = torchfcn_to_mmseg(checkpoint)
    num_classes = state_dict['decode_head.conv_seg.weight'].shape[0]
    meta = {'converted_from': args.src, 'fcn_variant': variant}
    if num_classes == len(PascalVOCDataset.METAINFO['classes']):
        meta['dataset_meta'] = {k: list(v) for k, v in PascalVOCDataset.METAINFO.items()}
    else:
        meta['dataset_meta'] = {'classes': [str(i) for i in range(num_classes)]}
    atomic_torch_save({'state_dict': state_dict, 'meta': meta}, args.dst)
    print(f'FCN-{variant}: wrote {len(state_dict)} tensors to {args.dst}')


if __name__ == '__main__':
    with refuse_unloadable():
        main()
