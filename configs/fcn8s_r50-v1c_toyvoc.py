# FCN-8s's skip head (FCNSkipHead, its defaults) on mmseg's own ResNetV1c-50 FCN config, trained
# on the toy data (data/toy: python tools/dataset_converters/make_toy_voc.py). A worked example
# of docs/models.md "The head in your own mmseg config".
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py'
custom_imports = dict(imports=['fcn_plugin'], allow_failed_imports=False)

model = dict(
    # the base loads open-mmlab://resnet50_v1c (ImageNet weights, a download); trained from
    # scratch here
    pretrained=None,
    # the toy images are 64-96 px of varied size: no padding to the base's 512x512 crop size;
    # mmseg's preprocessor needs exactly one of size and size_divisor to batch them
    data_preprocessor=dict(size=None, size_divisor=32),
    # ResNet's own strides (the base's "d8" variant dilates stages 3-4 instead): stages 1-4 are
    # then 256, 512, 1024 and 2048 channels at strides 4, 8, 16 and 32
    backbone=dict(strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1)),
    decode_head=dict(
        _delete_=True,
        type='FCNSkipHead',
        in_channels=(512, 1024, 2048),  # strides 8, 16, 32
        in_index=(1, 2, 3),
        num_classes=6),
    # the base's second FCNHead (a deep-supervision loss on stage 3): not FCN-8s
    auxiliary_head=None)

# The toy data as in configs/_base_/datasets/toy_voc.py (full images, no augmentation, the
# per-sample checks), replacing the base's VOC loaders: mmengine refuses two _base_ files
# that set the same keys, so that file cannot be a second base here.
data_root = 'data/toy'
toy = dict(
    type='ToyVOCDataset',
    data_root=data_root,
    data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'))
train_pipeline = [
    dict(type='CheckSegFiles'),
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),  # first: mmseg's inference API replaces it
    dict(type='CheckSegFiles'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='ResumableInfiniteSampler'),  # --resume without replaying the data
    dataset=dict(
        _delete_=True, ann_file='ImageSets/Segmentation/train.txt', pipeline=train_pipeline, **toy))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True, ann_file='ImageSets/Segmentation/val.txt', pipeline=test_pipeline, **toy))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='FCNMetric', per_image_iou=True)
test_evaluator = val_evaluator

# A toy schedule (the base's SGD at lr 0.01, poly decay over 200 instead of 160k iterations)
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=200, val_interval=100)
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=200, by_epoch=False)]
# mmseg's default hooks with our checkpoint and logger hooks, and the plugin's runtime hooks as
# named entries (configs/_base_/fcn_runtime.py; mmseg's runtime does not have them)
default_hooks = dict(
    logger=dict(type='RankZeroLoggerHook', interval=10),
    checkpoint=dict(type='AtomicCheckpointHook', interval=100),
    load_policy=dict(type='LoadPolicyHook'),
    preflight=dict(type='PreflightHook'),
    divergence=dict(type='DivergenceHook'),
    preemption=dict(type='PreemptionHook'),
    confusion_matrix=dict(type='ConfusionMatrixHook'),
    work_dir_lock=dict(type='WorkDirLockHook'))
randomness = dict(seed=0)
