# The FCN reference data: SBD train (8,498 images) for training, seg11valid (736 = VOC2011
# segmentation val minus SBD train) for validation and test, both in one VOC folder prepared by
#   python tools/dataset_converters/sbd.py data/sbd/benchmark_RELEASE/dataset \
#       data/VOCdevkit/VOC2012 --voc2011-val data/VOCdevkit/VOC2011/ImageSets/Segmentation/val.txt
# Layout (data_root):
#   JPEGImages/<id>.jpg                    VOC images (SBD-only ones copied in by the converter)
#   SegmentationClassSBD/<id>.png          SBD labels (converted from cls/*.mat)
#   SegmentationClass/<id>.png             VOC labels (seg11valid)
#   ImageSets/Segmentation/sbd_train.txt, seg11valid.txt
# As in the reference: full images, batch 1, no augmentation and no resizing, at train and test
# time; 255 = void (ignored in the loss and the metrics).
dataset_type = 'FCNVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
# the command that prepares the data, named in the datasets' errors (a list of short parts,
# joined by spaces: mmengine formats the config for its log with yapf, slowly on long strings)
prepare_cmd = [
    'python tools/dataset_converters/sbd.py', 'data/sbd/benchmark_RELEASE/dataset',
    'data/VOCdevkit/VOC2012', '--voc2011-val',
    'data/VOCdevkit/VOC2011/ImageSets/Segmentation/val.txt'
]
# CheckSegFiles/CheckSegSample (fcn_plugin.datasets.transforms): a missing, empty, truncated or
# corrupt file, a label value outside the classes/255 (the dataset gives CheckSegSample its
# class count) or a label/image size mismatch stops with one
# error naming the file. In test_pipeline LoadImageFromFile stays first: mmseg's inference API
# replaces the first step (and finds the loader by that name).
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
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    # InfiniteSampler's order; --resume starts it at the resumed iteration without loading data
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassSBD'),
        ann_file='ImageSets/Segmentation/sbd_train.txt',
        prepare_cmd=prepare_cmd,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/seg11valid.txt',
        prepare_cmd=prepare_cmd,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# Pixel acc., mean acc., mean IU, f.w. IU from one dataset-level confusion matrix (paper sec. 5).
val_evaluator = dict(type='FCNMetric')
test_evaluator = val_evaluator
