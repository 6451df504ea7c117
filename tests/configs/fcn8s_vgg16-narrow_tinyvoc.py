# A narrow FCN-8s for the tools' tests: the reference graph (pad 100, fc6 7x7, skips from pool3
# and pool4, fixed bilinear upsampling) with VGG16 at 1/16 width, on a tiny dataset in VOC layout
# that the tests fabricate (its folder is set with --cfg-options on the loaders' datasets).
# Chosen so that 1 process with batch 2 and 2 processes with batch 1 compute the same update:
# - no dropout (its masks would differ between ranks);
# - mean-reduced loss over all pixels of equally sized images: DDP averages the ranks' gradients,
#   which equals the gradient of the mean over the whole batch (a summed loss would be halved);
# - no shuffling, so rank r's k-th sample is the 1-process run's k-th batch's r-th sample.
# The project's runtime (its hooks must work in distributed runs too).
# The toy data's loaders (configs/_base_/datasets/toy_voc.py: VOC layout, same folders and
# split files) with mmseg's PascalVOCDataset (21 classes, as the head), no data checks, batch 2.
_base_ = [
    '../../configs/_base_/models/fcn8s_vgg16.py',
    '../../configs/_base_/datasets/toy_voc.py',
    '../../configs/_base_/fcn_runtime.py',
]
model = dict(
    backbone=dict(base_channels=4, fc_channels=16, dropout_ratio=0.0),
    decode_head=dict(in_channels=(16, 32, 16), loss_decode=dict(reduction='mean')))

dataset_type = 'PascalVOCDataset'
data_root = 'data/tinyvoc'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_pipeline = train_pipeline
train_dataloader = dict(
    batch_size=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = []
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=4, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=4))
