"""Prepare the FCN reference data: SBD train (8,498) and seg11valid (736) in one VOC folder.

    python tools/dataset_converters/sbd.py data/sbd/benchmark_RELEASE/dataset \
        data/VOCdevkit/VOC2012 --voc2011-val data/VOCdevkit/VOC2011/ImageSets/Segmentation/val.txt

Inputs (downloaded by the user):
  SBD_DIR  (benchmark_RELEASE/dataset of the Semantic Boundaries Dataset, benchmark.tgz):
      img/<id>.jpg, cls/<id>.mat (struct GTcls, field Segmentation: HxW uint8 class map),
      train.txt (8,498 ids), val.txt (2,857 ids)
  VOC_ROOT (VOCdevkit/VOC2012 or VOC2011): JPEGImages/, SegmentationClass/
  --voc2011-val: VOC2011's ImageSets/Segmentation/val.txt (1,111 ids); seg11valid is this list
      minus every image in SBD train (736 ids with the real data), as in the reference.

Written into VOC_ROOT (as mmseg's voc_aug.py writes SegmentationClassAug there):
  SegmentationClassSBD/<id>.png          SBD labels as VOC palette PNGs (0..20)
  JPEGImages/<id>.jpg                    copied from SBD img/ only where VOC_ROOT lacks one
  ImageSets/Segmentation/sbd_train.txt   8,498 ids (SBD train)
  ImageSets/Segmentation/sbd_val.txt     2,857 ids (SBD val)
  ImageSets/Segmentation/seg11valid.txt  736 ids (labels: VOC's SegmentationClass/)

Safe to run twice: labels already written are kept (each file is written to a temporary name
and renamed, so an interrupted run leaves no half-written PNG); split files are rewritten.
"""
import argparse
import sys
from typing import Optional, Sequence

from fcn_plugin.apis.sbd import DataError, convert_sbd


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='SBD -> VOC-layout labels and the sbd_train / seg11valid splits of the FCN '
        'reference',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__)
    parser.add_argument('sbd_dir', help='SBD benchmark_RELEASE/dataset folder')
    parser.add_argument('voc_root', help='VOCdevkit/VOC2012 (or VOC2011) folder; output goes here')
    parser.add_argument(
        '--voc2011-val',
        default=None,
        help='VOC2011 ImageSets/Segmentation/val.txt (default: '
        '<voc_root>/../VOC2011/ImageSets/Segmentation/val.txt)')
    parser.add_argument('--nproc', type=int, default=1, help='worker processes')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        result = convert_sbd(args.sbd_dir, args.voc_root, args.voc2011_val, args.nproc)
    except DataError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(result.summary())
    if result.warning():
        print(result.warning(), file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
