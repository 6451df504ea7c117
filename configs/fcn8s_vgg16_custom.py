# FCN-8s VGG16 on YOUR data: copy this file, set the block below, train:
#   python tools/check_dataset.py configs/my_fcn8s.py      # every file, the labels' values
#   python tools/train.py configs/my_fcn8s.py
# Data: images and index-label PNGs in folders (configs/_base_/datasets/custom_seg.py). A label
# holds one class index per pixel (0..K-1; 255 = void, ignored). Masks saved as 0/255 (most
# tools), grey levels or colours must be converted first, e.g.
#   python tools/dataset_converters/masks2labels.py data/my_dataset/masks data/my_dataset/labels
# (a 0/255 mask used as a label makes every foreground pixel void: the run would learn nothing;
# tools/check_dataset.py and the training-start check stop on that, naming this command).
# Binary segmentation is num_classes = 2: softmax over background and foreground, as in the FCN
# paper (not mmseg's out_channels=1 sigmoid).
# Recipe: FCN-8s at-once from the Caffe VGG16 weights (pretrain/vgg16_caffe.pth, written by
# tools/model_converters/vgg2mmseg.py), full images, batch 1, loss SUMMED over non-void pixels,
# SGD momentum 0.99, fixed lr 1e-10 (tuned for ~500x500 images: the summed loss scales with the
# pixel count, so scale the lr by ~250000 / (H * W) for other sizes).
_base_ = [
    './_base_/models/fcn8s-atonce_vgg16.py',
    './_base_/datasets/custom_seg.py',
    './_base_/schedules/fcn_reference_100k.py',
    './_base_/fcn_runtime.py',
]

# ------------------------------------------------------------------ your data: edit this block
data_root = 'data/my_dataset'
classes = ('background', 'foreground')  # class i = label value i; K classes = K names
palette = [[0, 0, 0], [255, 255, 255]]  # one RGB colour per class
img_suffix = '.jpg'  # images: <data_root>/<img_path>/<name><img_suffix>
seg_map_suffix = '.png'  # labels: <data_root>/<seg_map_path>/<name><seg_map_suffix>
train_prefix = dict(img_path='images/train', seg_map_path='labels/train')
val_prefix = dict(img_path='images/val', seg_map_path='labels/val')
train_split = ''  # optional split files relative to data_root ('' = every image in the folder)
val_split = ''
max_iters = 100000  # batch-1 iterations (the reference: 100k-300k on 8,498 images)
# -------------------------------------------------------------------------------------------

# Derived from the block above; nothing to edit below. (A child of this config, rather than a
# copy, sets the nested keys below itself: mmengine evaluates these lines when it reads this file,
# so a child's top-level `data_root = ...` would not reach them.)
model = dict(
    backbone=dict(
        init_cfg=dict(_delete_=True, type='Pretrained', checkpoint='pretrain/vgg16_caffe.pth')),
    decode_head=dict(num_classes=len(classes)))
metainfo = dict(classes=classes, palette=palette)
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        data_prefix=train_prefix,
        ann_file=train_split,
        img_suffix=img_suffix,
        seg_map_suffix=seg_map_suffix,
        metainfo=metainfo))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        data_prefix=val_prefix,
        ann_file=val_split,
        img_suffix=img_suffix,
        seg_map_suffix=seg_map_suffix,
        metainfo=metainfo))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=1e-10))
train_cfg = dict(max_iters=max_iters, val_interval=4000)
