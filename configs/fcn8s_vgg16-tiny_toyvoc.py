# A narrow FCN-8s for the offline demo on the toy dataset (data/toy, written by
#   python tools/dataset_converters/make_toy_voc.py), used by `make demo` (tools/demo.sh).
# Same code paths as configs/fcn8s_vgg16_voc.py (VGG16 trunk with fc6/fc7 as convolutions and a
# padded conv1_1, FCNSkipHead with pool3/pool4 skips, fixed bilinear upsampling, crops derived
# from the layer geometry, full images of varied size, no augmentation or resizing, FCNMetric),
# but 1/8 of the width and trained from scratch on the CPU: 600 iterations, 1.5 minutes on 2
# idle cores (4 under load), toy val mIoU 81. Differences from the reference recipe, for speed:
# - the loss is AVERAGED over non-ignored pixels (reduction='mean') and trained with Adam at a
#   normal learning rate (1e-3, poly decay to 1e-4); the reference SUMS the loss and uses SGD
#   with lr 1e-10..1e-14;
# - conv1_1 pad 16 and a 3x3 fc6 instead of 100 and 7x7 (see below), dropout 0.1;
# - inputs are also divided by a std of 58 (no pretrained weights expect raw 0-255 values);
# - Kaiming initialisation of the trunk (no pretrained weights); batches of 4 (padded).
# A child config changes it with nested keys, e.g. train_cfg = dict(max_iters=200) (and the
# PolyLR's end), model = dict(decode_head=dict(num_classes=K)) with the datasets' classes.
_base_ = [
    './_base_/models/fcn8s_vgg16.py',
    './_base_/datasets/toy_voc.py',
    './_base_/schedules/fcn_reference_100k.py',
    './_base_/fcn_runtime.py',
]
data_preprocessor = dict(std=[58.0, 58.0, 58.0])  # the rest as in the model base
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        base_channels=8,  # stages 8, 16, 32, 64, 64 (VGG16: 64 ... 512)
        fc_channels=64,  # fc6/fc7 (VGG16: 4096)
        # 16 instead of 100 and a 3x3 fc6 instead of 7x7: ~6x fewer pixels at conv1 for these
        # 64-96 px images; the crops are derived for this geometry (1, 1, 11) and every size
        # from 60 to 99 px gives logits of exactly the input's size.
        first_conv_padding=16,
        fc6_kernel_size=3,
        dropout_ratio=0.1,
        init_cfg=dict(_delete_=True, type='Kaiming', layer='Conv2d', nonlinearity='relu')),
    decode_head=dict(
        in_channels=(32, 64, 64),
        num_classes=6,
        loss_decode=dict(reduction='mean', avg_non_ignore=True)))  # mean over non-void pixels

optim_wrapper = dict(
    _delete_=True, type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3, weight_decay=0))
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=600, by_epoch=False)]
train_cfg = dict(max_iters=600, val_interval=200)
default_hooks = dict(logger=dict(interval=25), checkpoint=dict(interval=200, max_keep_ckpts=2))
