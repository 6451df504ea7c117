"""Prepare the FCN reference data (``tools/dataset_converters/sbd.py``): SBD train (8,498) and
seg11valid (736) in one VOC folder, as :func:`convert_sbd`.

Inputs (downloaded by the user):
  SBD_DIR  (benchmark_RELEASE/dataset of the Semantic Boundaries Dataset, benchmark.tgz):
      img/<id>.jpg, cls/<id>.mat (struct GTcls, field Segmentation: HxW uint8 class map),
      train.txt (8,498 ids), val.txt (2,857 ids)
  VOC_ROOT (VOCdevkit/VOC2012 or VOC2011): JPEGImages/, SegmentationClass/
  VOC2011 val: VOC2011's ImageSets/Segmentation/val.txt (1,111 ids); seg11valid is this list
      minus every image in SBD train (736 ids with the real data), as in the reference.

Written into VOC_ROOT (as mmseg's voc_aug.py writes SegmentationClassAug there):
  SegmentationClassSBD/<id>.png          SBD labels as VOC palette PNGs (0..20)
  JPEGImages/<id>.jpg                    copied from SBD img/ only where VOC_ROOT lacks one
  ImageSets/Segmentation/sbd_train.txt   8,498 ids (SBD train)
  ImageSets/Segmentation/sbd_val.txt     2,857 ids (SBD val)
  ImageSets/Segmentation/seg11valid.txt  736 ids (labels: VOC's SegmentationClass/)

Safe to run twice: labels already written are kept (each file is written to a temporary name
and renamed, so an interrupted run leaves no half-written PNG); split files are rewritten.
Missing or misplaced inputs raise :class:`DataError`, naming what is expected where.
"""
import os
import os.path as osp
import shutil
from dataclasses import dataclass, field
from multiprocessing import Pool
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy.io import loadmat
from tqdm import tqdm

from ..utils.io import atomic_write, atomic_write_text
from ..utils.label_png import save_label_png

COMMAND = ('python tools/dataset_converters/sbd.py data/sbd/benchmark_RELEASE/dataset '
           'data/VOCdevkit/VOC2012 --voc2011-val '
           'data/VOCdevkit/VOC2011/ImageSets/Segmentation/val.txt')
SBD_URL = ('http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/'
           'semantic_contours/benchmark.tgz')
NUM_CLASSES = 21
REFERENCE_SIZES = dict(train=8498, seg11valid=736)  # with the full SBD and VOC2011 val
Log = Optional[Callable[[str], None]]


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


def convert_sbd_labels(sbd_dir: str,
                       voc_root: str,
                       nproc: int = 1,
                       log: Log = print) -> Tuple[Dict[str, List[str]], int]:
    """SBD labels -> ``VOC_ROOT/SegmentationClassSBD`` and the split files ``sbd_train.txt``,
    ``sbd_val.txt``; returns the splits ``{'train': ids, 'val': ids}`` and how many label PNGs
    were written (the others were there already)."""
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
    if log:
        log(f'{written} label PNGs written, {len(ids) - written} already there')
    write_ids(osp.join(split_dir, 'sbd_train.txt'), splits['train'])
    write_ids(osp.join(split_dir, 'sbd_val.txt'), splits['val'])
    return splits, written


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


@dataclass
class SBDSplits:
    """What :func:`convert_sbd` wrote: the ids of each split file and the label count."""
    voc_root: str
    train: List[str] = field(default_factory=list)
    val: List[str] = field(default_factory=list)
    seg11valid: List[str] = field(default_factory=list)
    written: int = 0  # label PNGs written (the others were already there)

    @property
    def split_dir(self) -> str:
        return osp.join(self.voc_root, 'ImageSets', 'Segmentation')

    def summary(self) -> str:
        return (f'sbd_train: {len(self.train)} images (reference: {REFERENCE_SIZES["train"]}), '
                f'sbd_val: {len(self.val)}, seg11valid: {len(self.seg11valid)} (reference: '
                f'{REFERENCE_SIZES["seg11valid"]}), in {self.split_dir}')

    def warning(self) -> Optional[str]:
        """A sign of the wrong VOC2011 list (the full SBD train but not 736 seg11valid ids)."""
        if (len(self.train) == REFERENCE_SIZES['train']
                and len(self.seg11valid) != REFERENCE_SIZES['seg11valid']):
            return ('warning: seg11valid should have 736 images with the full SBD and VOC2011 '
                    'val; is --voc2011-val the VOC2011 list?')
        return None


def convert_sbd(sbd_dir: str,
                voc_root: str,
                voc2011_val: Optional[str] = None,
                nproc: int = 1,
                log: Log = print) -> SBDSplits:
    """SBD labels into ``voc_root`` (:func:`convert_sbd_labels`, ``nproc`` worker processes)
    and the split files sbd_train, sbd_val and seg11valid (:func:`make_seg11valid`; VOC2011's
    val list ``voc2011_val``, default :func:`default_voc2011_val`). ``log`` gets the count of
    labels written (``None``: quiet). Raises :class:`DataError` on missing inputs."""
    splits, written = convert_sbd_labels(sbd_dir, voc_root, nproc, log)
    valid = make_seg11valid(voc2011_val or default_voc2011_val(voc_root), splits['train'], voc_root)
    return SBDSplits(voc_root, splits['train'], splits['val'], valid, written)
