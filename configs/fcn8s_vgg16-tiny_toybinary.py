# Binary segmentation on the toy data, with the narrow FCN-8s of the demo: the worked example of
# configs/fcn8s_vgg16_custom.py (a child of it, with mmseg's nested keys) on masks saved as 0/255.
#   python tools/dataset_converters/make_toy_voc.py --binary     # images/ and 0/255 masks/
#   python tools/dataset_converters/masks2labels.py data/toy_binary/masks data/toy_binary/labels
#   python tools/check_dataset.py configs/fcn8s_vgg16-tiny_toybinary.py
#   python tools/train.py configs/fcn8s_vgg16-tiny_toybinary.py
# Binary is num_classes = 2: two score channels and a softmax over background and foreground,
# as in the FCN paper (not mmseg's out_channels=1 sigmoid). Foreground = any toy shape.
# Training the masks themselves (seg_map_path='masks/...') is stopped before the first
# iteration: 255 is void, every foreground pixel would be ignored (loss ~0, mIoU 100).
# Narrow model and fast solver as in configs/fcn8s_vgg16-tiny_toyvoc.py (1/8 width, no
# pretrained weights, mean loss, Adam with poly decay); 300 iterations, about a minute on 2 cores.
_base_ = ['./fcn8s_vgg16_custom.py']

# The data: a child sets the nested keys (the parent's top-level variables were used when the
# parent was read). The head keeps the parent's 2 classes.
metainfo = dict(classes=('background', 'shape'), palette=[[0, 0, 0], [255, 255, 255]])
prepare_cmd = [  # parts joined by spaces (see configs/_base_/datasets/sbd_seg11valid.py)
    'python tools/dataset_converters/make_toy_voc.py', '--binary &&',
    'python tools/dataset_converters/masks2labels.py', 'data/toy_binary/masks',
    'data/toy_binary/labels'
]
data = dict(data_root='data/toy_binary', metainfo=metainfo, prepare_cmd=prepare_cmd)
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False, dataset=data)
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=data)
test_dataloader = val_dataloader
val_evaluator = dict(per_image_iou=True)
test_evaluator = val_evaluator

data_preprocessor = dict(std=[58.0, 58.0, 58.0])  # the rest as in the model base
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(
        skip_scales=None,  # plain FCN-8s: the at-once skip scaling is for the summed-loss recipe
        in_channels=(32, 64, 64),
        loss_decode=dict(reduction='mean', avg_non_ignore=True)),
    backbone=dict(
        base_channels=8,
        fc_channels=64,
        first_conv_padding=16,
        fc6_kernel_size=3,
        dropout_ratio=0.1,
        init_cfg=dict(_delete_=True, type='Kaiming', layer='Conv2d', nonlinearity='relu')))
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3, weight_decay=0))
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=300, by_epoch=False)]
train_cfg = dict(max_iters=300, val_interval=100)
default_hooks = dict(logger=dict(interval=25), checkpoint=dict(interval=100, max_keep_ckpts=2))
