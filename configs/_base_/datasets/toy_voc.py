# The toy dataset of the offline demo (data/toy, written by
#   python tools/dataset_converters/make_toy_voc.py): VOC layout, background plus five shape
# classes (ToyVOCDataset), 255 = void borders, 96 train and 32 val images of 64..96 px a side.
# As in the FCN recipe: full images of varied size, no augmentation and no resizing (batches
# are padded by the model's data preprocessor); FCNMetric with per-image IoUs.
dataset_type = 'ToyVOCDataset'
data_root = 'data/toy'
# The per-sample data checks (fcn_plugin.datasets.transforms): a missing or corrupt file, a label
# value outside the classes/255 (CheckSegSample takes the dataset's class count) or an image/label
# size mismatch stops with the file named. In
# test_pipeline LoadImageFromFile stays first: mmseg's inference API replaces the first step.
train_pipeline = [
    dict(type='CheckSegFiles'),
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CheckSegFiles'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    # InfiniteSampler's order; --resume starts it at the resumed iteration without loading data
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='FCNMetric', per_image_iou=True)
test_evaluator = val_evaluator
