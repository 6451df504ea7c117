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
import os
import os.path as osp
import shutil
import sys
from multiprocessing import Pool
from typing import List, Optional, Sequence

import numpy as np
from scipy.io import loadmat
from tqdm import tqdm

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))  # bare checkout
from fcn_plugin.utils.io import atomic_write, atomic_write_text  # noqa: E402
from fcn_plugin.utils.label_png import save_label_png  # noqa: E402

COMMAND = ('python tools/dataset_converters/sbd.py data/sbd/benchmark_RELEASE/dataset '
           'data/VOCdevkit/VOC2012 --voc2011-val '
           'data/VOCdevkit/VOC2011/ImageSets/Segmentation/val.txt')
SBD_URL = ('http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/'
           'semantic_contours/benchmark.tgz')
NUM_CLASSES = 21


class DataError(RuntimeError):
    """Missing or misplaced input data: the message says what is expected and where."""


def _require(path: str, what: str, isdir: bool = False) -> None:
    ok = osp.isdir(path) if isdir else osp.isfile(path)
    if not ok:
        raise DataError(f'{what} not found: {path}\n'
                        f'Expected SBD at <SBD_DIR> = .../benchmark_RELEASE/dataset (img/, cls/, '
                        f'train.txt, val.txt; from {SBD_URL}) and Pascal VOC at <VOC_ROOT> = '
                        f'.../VOCdevkit/VOC2012 (JPEGImages/, SegmentationClass/).\n'
                        f'Then run: {COMMAND}')


def read_ids(path: str) -> List[str]:
    with open(path) as f:
        return [line.strip().split()[0] for line in f if line.strip()]


def write_ids(path: str, ids: Sequence[str]) -> None:
    atomic_write_text(path, ''.join(f'{i}\n' for i in ids))


def load_sbd_label(mat_path: str) -> np.ndarray:
    """The class map ``GTcls.Segmentation`` (H, W) uint8 of one SBD ``cls/*.mat`` file."""
    try:
        mat = loadmat(mat_path, squeeze_me=True, struct_as_record=False, variable_names=['GTcls'])
        seg = np.asarray(mat['GTcls'].Segmentation)
    except (KeyError, AttributeError, ValueError, OSError) as e:
        raise DataError(f'{mat_path}: not an SBD class label file (expected a struct GTcls '
                        f'with field Segmentation): {e!r}') from e
    if seg.ndim != 2 or (seg.size and (seg.min() < 0 or
                                       (seg.max() >= NUM_CLASSES and seg.max() != 255))):
        raise DataError(f'{mat_path}: GTcls.Segmentation has shape {seg.shape} and values '
                        f'outside 0..{NUM_CLASSES - 1}/255')
    return seg.astype(np.uint8)


def _convert_one(args) -> int:
    """Convert one id; returns 1 if a file was written, 0 if it was already there."""
    name, sbd_dir, voc_root = args
    written = 0
    out = osp.join(voc_root, 'SegmentationClassSBD', name + '.png')
    if not osp.isfile(out):
        save_label_png(load_sbd_label(osp.join(sbd_dir, 'cls', name + '.mat')), out)
        written = 1
    img = osp.join(voc_root, 'JPEGImages', name + '.jpg')
    if not osp.isfile(img):
        with atomic_write(img) as tmp:
            shutil.copyfile(osp.join(sbd_dir, 'img', name + '.jpg'), tmp)
    return written


def convert_sbd(sbd_dir: str, voc_root: str, nproc: int = 1) -> dict:
    """SBD labels -> ``VOC_ROOT/SegmentationClassSBD`` and the split files; returns the splits."""
    for sub in ('img', 'cls'):
        _require(osp.join(sbd_dir, sub), f'SBD folder {sub}/', isdir=True)
    for split in ('train', 'val'):
        _require(osp.join(sbd_dir, split + '.txt'), f'SBD split file {split}.txt')
    for sub in ('JPEGImages', 'SegmentationClass'):
        _require(osp.join(voc_root, sub), f'VOC folder {sub}/', isdir=True)
    splits = {s: read_ids(osp.join(sbd_dir, s + '.txt')) for s in ('train', 'val')}
    ids = sorted(set(splits['train']) | set(splits['val']))
    missing = [i for i in ids if not osp.isfile(osp.join(sbd_dir, 'cls', i + '.mat'))]
    if missing:
        _require(
            osp.join(sbd_dir, 'cls', missing[0] + '.mat'),
            f'SBD label ({len(missing)} of {len(ids)} missing)')
    missing = [
        i for i in ids if not osp.isfile(osp.join(sbd_dir, 'img', i + '.jpg'))
        and not osp.isfile(osp.join(voc_root, 'JPEGImages', i + '.jpg'))
    ]
    if missing:
        _require(
            osp.join(sbd_dir, 'img', missing[0] + '.jpg'),
            f'SBD image ({len(missing)} of {len(ids)} missing)')

    os.makedirs(osp.join(voc_root, 'SegmentationClassSBD'), exist_ok=True)
    split_dir = osp.join(voc_root, 'ImageSets', 'Segmentation')
    os.makedirs(split_dir, exist_ok=True)
    tasks = [(i, sbd_dir, voc_root) for i in ids]
    bar = dict(total=len(tasks), desc='SBD cls/*.mat -> SegmentationClassSBD', unit='img')
    if nproc > 1:
        with Pool(nproc) as pool:
            written = sum(tqdm(pool.imap_unordered(_convert_one, tasks, chunksize=32), **bar))
    else:
        written = sum(tqdm(map(_convert_one, tasks), **bar))
    print(f'{written} label PNGs written, {len(ids) - written} already there')
    write_ids(osp.join(split_dir, 'sbd_train.txt'), splits['train'])
    write_ids(osp.join(split_dir, 'sbd_val.txt'), splits['val'])
    return splits


def make_seg11valid(voc2011_val: str, sbd_train: Sequence[str], voc_root: str) -> List[str]:
    """seg11valid = VOC2011 segmentation val minus SBD train, in VOC2011's order."""
    _require(voc2011_val, 'VOC2011 segmentation val list (ImageSets/Segmentation/val.txt)')
    train = set(sbd_train)
    ids = [i for i in read_ids(voc2011_val) if i not in train]
    for i in tqdm(ids, desc='checking seg11valid images and labels', unit='img'):
        _require(osp.join(voc_root, 'JPEGImages', i + '.jpg'), 'seg11valid image')
        _require(osp.join(voc_root, 'SegmentationClass', i + '.png'), 'seg11valid label')
    write_ids(osp.join(voc_root, 'ImageSets', 'Segmentation', 'seg11valid.txt'), ids)
    return ids


def default_voc2011_val(voc_root: str) -> str:
    own = osp.join(voc_root, 'ImageSets', 'Segmentation', 'val.txt')
    if osp.basename(osp.normpath(voc_root)) == 'VOC2011':
        return own
    return osp.join(
        osp.dirname(osp.normpath(voc_root)), 'VOC2011', 'ImageSets', 'Segmentation', 'val.txt')


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
        splits = convert_sbd(args.sbd_dir, args.voc_root, args.nproc)
        valid = make_seg11valid(
            args.voc2011_val or default_voc2011_val(args.voc_root), splits['train'], args.voc_root)
    except DataError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'sbd_train: {len(splits["train"])} images (reference: 8498), sbd_val: '
          f'{len(splits["val"])}, seg11valid: {len(valid)} (reference: 736), in '
          f'{osp.join(args.voc_root, "ImageSets", "Segmentation")}')
    if len(splits['train']) == 8498 and len(valid) != 736:
        print(
            'warning: seg11valid should have 736 images with the full SBD and VOC2011 val; '
            'is --voc2011-val the VOC2011 list?',
            file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
