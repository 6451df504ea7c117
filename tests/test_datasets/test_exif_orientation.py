"""EXIF orientation: images are used as displayed (the tag applied), labels as stored, in
training, testing, inference (mmseg's inference pipeline, tools/infer.py's mmcv.imread) and the
ONNX path (mmcv.imread); the header size check compares a label with the image as loaded and
names the tag when a label was drawn on the stored pixels; tools/check_dataset.py and the
check before training report images and labels carrying a tag (a 180-degree turn passes every
size check)."""
import os.path as osp
from types import SimpleNamespace

import cv2
import mmcv
import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from mmengine.config import Config
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import DATASETS
from PIL import Image

from fcn_plugin.datasets.file_checks import inspect_header, read_orientation
from fcn_plugin.datasets.transforms import BadSampleError, image_orientation_of
from fcn_plugin.runtime import PreflightHook

H, W = 20, 28  # make_voc's size
RED = (255, 0, 0)


def exif(orientation: int) -> bytes:
    tags = Image.Exif()
    tags[274] = orientation
    return tags.tobytes()


def save_tagged(path, orientation: int, height=H, width=W, label=False):
    """A JPEG image (red top-left corner) or a label PNG (value 1 in that corner) of ``height x
    width`` stored pixels, with EXIF orientation ``orientation``."""
    if label:
        pixels = np.zeros((height, width), np.uint8)
        pixels[:4, :4] = 1
        Image.fromarray(pixels).save(path, exif=exif(orientation))
    else:
        pixels = np.full((height, width, 3), 40, np.uint8)
        pixels[:6, :6] = RED
        Image.fromarray(pixels).save(path, quality=95, exif=exif(orientation))
    return str(path)


def red_corner(bgr: np.ndarray) -> str:
    """The corner of the red mark of an image loaded as BGR: ``'top left'``..."""
    rows, cols = np.nonzero((bgr[..., 2] > 180) & (bgr[..., 0] < 100))
    return ('top' if rows.mean() < bgr.shape[0] /
            2 else 'bottom') + ' ' + ('left' if cols.mean() < bgr.shape[1] / 2 else 'right')


def test_every_loader_follows_the_rule(tmp_path):
    """Images: turned as the tag says (LoadImageFromFile on both backends, mmcv.imread as
    tools/infer.py and the ONNX example use it, cv2.imread, mmseg's inference pipeline);
    labels: as stored (LoadAnnotations)."""
    from mmseg.apis.utils import _preprare_data  # what mmseg's inference_model runs
    image = save_tagged(tmp_path / 'six.jpg', 6)  # turned 90 degrees clockwise when displayed
    label = save_tagged(tmp_path / 'six.png', 6, label=True)
    assert inspect_header(image)[1:] == ((H, W), 6) and read_orientation(label) == 6
    shown = [
        LoadImageFromFile()(dict(img_path=image))['img'],
        LoadImageFromFile(imdecode_backend='pillow')(dict(img_path=image))['img'],
        mmcv.imread(image),
        cv2.imread(image),
    ]
    for img in shown:
        assert img.shape[:2] == (W, H) and red_corner(img) == 'top right'
    pipeline = Config.fromfile('configs/_base_/datasets/custom_seg.py').test_pipeline
    data, _ = _preprare_data(image, SimpleNamespace(cfg=Config(dict(test_pipeline=pipeline))))
    assert tuple(data['inputs'][0].shape[1:]) == (W, H)
    stored = LoadImageFromFile(color_type='color_ignore_orientation')(dict(img_path=image))
    assert stored['img'].shape[:2] == (H, W) and red_corner(stored['img']) == 'top left'
    loaded = LoadAnnotations()(dict(seg_map_path=label, seg_fields=[], reduce_zero_label=False))
    assert loaded['gt_seg_map'].shape == (H, W) and loaded['gt_seg_map'][0, 0] == 1
    assert image_orientation_of([LoadImageFromFile()]) == 'exif'
    assert image_orientation_of([LoadImageFromFile(color_type='unchanged')]) == 'stored'


@pytest.fixture
def voc(tmp_path, make_voc):
    ids = make_voc(tmp_path / 'voc', n_train=4, n_val=1)
    return tmp_path / 'voc', ids['train']


def img(root, name):
    return osp.join(str(root), 'JPEGImages', name + '.jpg')


def seg(root, name):
    return osp.join(str(root), 'SegmentationClass', name + '.png')


def train_set(root, **image_loader):
    return dict(
        type='FCNVOCDataset',
        data_root=str(root),
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline=[
            dict(type='CheckSegFiles'),
            dict(type='LoadImageFromFile', **image_loader),
            dict(type='LoadAnnotations'),
            dict(type='CheckSegSample')
        ])


def test_size_check_compares_the_label_with_the_image_as_loaded(voc):
    root, names = voc
    save_tagged(img(root, names[0]), 6)  # stored HxW: its label was drawn on the stored pixels
    save_tagged(img(root, names[1]), 6, W, H)  # stored WxH, loaded HxW: fits its label
    dataset = DATASETS.build(train_set(root))
    with pytest.raises(BadSampleError) as info:
        dataset[0]
    message = str(info.value)
    assert message.startswith(f'bad data: sample 0: {seg(root, names[0])}: label size 20x28 '
                              f'(HxW) is the size of the image {img(root, names[0])} as stored')
    assert 'EXIF orientation tag (274) = 6 (rotated 90 degrees clockwise)' in message
    assert 'exiftool -n -Orientation=1' in message and 'turn the label' in message
    sample = dataset[1]
    assert sample['img'].shape[:2] == sample['gt_seg_map'].shape == (H, W)
    # a pipeline that loads images as stored is checked as it loads them
    stored = DATASETS.build(train_set(root, color_type='color_ignore_orientation'))
    assert stored[0]['img'].shape[:2] == (H, W)
    save_tagged(img(root, names[2]), 6)
    save_tagged(seg(root, names[2]), 1, H - 3, W, label=True)  # fits neither way
    with pytest.raises(BadSampleError) as info:
        dataset[2]
    assert str(info.value).endswith(
        f'label size 17x28 (HxW) differs from the image {img(root, names[2])} (28x20; its EXIF '
        'orientation tag (274) = 6 (rotated 90 degrees clockwise), applied when it is loaded: '
        'stored 20x28)')
    with pytest.raises(
            BadSampleError,
            match=r'differs from the image .* \(28x20; its EXIF .* = 6 '
            r'.* would turn it to 20x28, as viewers show it, but this pipeline loads '
            'images as stored'):
        stored[1]


def test_rotated_images_duplicates_and_tagged_labels_are_reported(voc, tmp_path, check_dataset,
                                                                  write_config):
    root, names = voc
    save_tagged(img(root, names[1]), 3)  # 180 degrees: no size check can tell
    save_tagged(seg(root, names[2]), 8, label=True)
    split = osp.join(str(root), 'ImageSets/Segmentation/train.txt')
    with open(split, 'a') as f:
        f.write(f'{names[0]}\n' * 8 + f'{names[3]}\n')  # names[0] 9 times, names[3] twice
    # before training: a sample of the split, the images' headers only
    dataset = DATASETS.build(train_set(root))
    found = {f.kind: f for f in PreflightHook().check_labels([('train_dataloader', dataset)])}
    assert {'duplicates', 'exif_images', 'exif_labels'} <= set(found)
    assert all(found[k].level == 'warning' for k in ('duplicates', 'exif_images', 'exif_labels'))
    assert (f'2 sample(s) are listed more than once by {split} (9 extra entries of 13): '
            f'{names[0]} (9 times), {names[3]} (2 times)') in found['duplicates'].message
    rotated = found['exif_images'].message
    assert f'1 of 4 images carry an EXIF orientation tag (274) other than 1: {img(root, names[1])}'\
        ' (3: rotated 180 degrees)' in rotated
    assert 'loaded rotated as their EXIF tag says: their labels must be drawn on the rotated ' \
        'image' in rotated
    assert seg(root, names[2]) in found['exif_labels'].message
    # tools/check_dataset.py: every file; warnings, exit status 0
    result = check_dataset(write_config(tmp_path / 'cfg.py', root), '--workers', '1')
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert 'train: warning: train split: 2 sample(s) are listed more than once' in out
    assert 'train: warning: train split: 1 of 4 images carry an EXIF orientation tag' in out
    assert f'1 of 4 label files carry an EXIF orientation tag (274) other than 1: ' \
        f'{seg(root, names[2])} (8: rotated 90 degrees counter-clockwise)' in out
    assert 'train: all 13 samples OK (4 warning(s) above)' in out
