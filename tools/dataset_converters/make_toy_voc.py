"""Write a small deterministic toy segmentation dataset in Pascal VOC layout.

    python tools/dataset_converters/make_toy_voc.py            # -> data/toy/
    python tools/dataset_converters/make_toy_voc.py --out-dir data/synth_voc --size 375 500 \
        --num-train 200 --num-val 20 --sbd-layout   # VOC-sized, read by the *_voc.py configs
    python tools/dataset_converters/make_toy_voc.py --binary   # -> data/toy_binary/, 0/255 masks

The layout (JPEGImages/, SegmentationClass/ palette PNGs with 255 void borders, ImageSets/),
the classes and the binary variant: :mod:`fcn_plugin.datasets.toy_data`. Everything comes from
one seeded generator, so running the script twice writes the same files (it rewrites them;
nothing else in the output folder is touched).

``--size H W`` makes every image that size (a VOC image is 375x500 or 500x375); with
``--sbd-layout`` the files follow the reference recipe's layout instead (train labels in
``SegmentationClassSBD``, splits ``sbd_train.txt`` / ``seg11valid.txt``), so that
``configs/*_vgg16_voc.py`` train on it with ``--cfg-options`` setting the dataloaders'
``data_root``: how the README measures the data pipeline against the train step.
"""
import argparse
import sys

from fcn_plugin.apis.toy_data import make_toy_data


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out-dir', help='output folder (data/toy; --binary: data/toy_binary)')
    parser.add_argument('--num-train', type=int, default=96)
    parser.add_argument('--num-val', type=int, default=32)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--size',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='every image this size (default: 64..96 px a side)')
    parser.add_argument(
        '--binary',
        action='store_true',
        help='a binary dataset (foreground = any object) with 0/255 masks in '
        'images/ and masks/ (see make_toy_binary), for masks2labels.py and '
        'configs/fcn8s_vgg16-tiny_toybinary.py')
    parser.add_argument(
        '--sbd-layout',
        action='store_true',
        help='the reference recipe\'s layout (SegmentationClassSBD, '
        'sbd_train.txt, seg11valid.txt)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    result = make_toy_data(args.out_dir, args.num_train, args.num_val, args.seed, args.size,
                           args.binary, args.sbd_layout)
    print(result.summary())
    return 0


if __name__ == '__main__':
    sys.exit(main())
