# FCN-8s at-once with mmseg's standard Pascal VOC 2012 + SBD "aug" layout
# (mmseg::_base_/datasets/pascal_voc12_aug.py: data/VOCdevkit/VOC2012 with SegmentationClassAug
# and ImageSets/Segmentation/aug.txt, prepared by mmseg's tools/dataset_converters/voc_aug.py).
# Trains on train + aug (10,582 images), validates on VOC2012 val (1,449 images; not
# seg11valid, so numbers are not comparable with the paper's table). The reference recipe
# otherwise: full images, batch 1, no augmentation or resizing, BGR minus the Caffe mean, loss
# SUMMED over pixels, SGD 0.99, fixed lr 1e-10, 300k iterations from pretrain/vgg16_caffe.pth.
_base_ = [
    './_base_/models/fcn8s-atonce_vgg16.py',
    'mmseg::_base_/datasets/pascal_voc12_aug.py',
    './_base_/schedules/fcn_reference_100k.py',
    './_base_/fcn_runtime.py',
]
data_root = 'data/VOCdevkit/VOC2012'
prepare_cmd = [  # parts joined by spaces (see configs/_base_/datasets/sbd_seg11valid.py)
    'python', '<mmsegmentation>/tools/dataset_converters/voc_aug.py',
    'data/VOCdevkit data/VOCdevkit/VOCaug --nproc 8', '(see mmseg',
    'docs/en/user_guides/2_dataset_prepare.md)'
]
# The per-sample data checks of configs/_base_/datasets/sbd_seg11valid.py (a bad file or label
# value stops with the file named); LoadImageFromFile stays first in test_pipeline (mmseg's
# inference API replaces the first step).
train_pipeline = [
    dict(type='CheckSegFiles'),
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),
    dict(type='PackSegInputs'),
]
test_pipeline = [  # also what mmseg.apis.inference_model runs (without annotations)
    dict(type='LoadImageFromFile'),
    dict(type='CheckSegFiles'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    # mmseg's InfiniteSampler, startable at an iteration: --resume does not replay the data
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(
                type='FCNVOCDataset',
                data_root=data_root,
                data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
                ann_file='ImageSets/Segmentation/train.txt',
                prepare_cmd=prepare_cmd,
                pipeline=train_pipeline),
            dict(
                type='FCNVOCDataset',
                data_root=data_root,
                data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
                ann_file='ImageSets/Segmentation/aug.txt',
                prepare_cmd=prepare_cmd,
                pipeline=train_pipeline),
        ]))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    dataset=dict(type='FCNVOCDataset', prepare_cmd=prepare_cmd, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='FCNMetric')
test_evaluator = val_evaluator
model = dict(
    backbone=dict(
        init_cfg=dict(_delete_=True, type='Pretrained', checkpoint='pretrain/vgg16_caffe.pth')))
optim_wrapper = dict(optimizer=dict(lr=1e-10))
train_cfg = dict(max_iters=300000, val_interval=4000)
