# FCN-32s VGG16 on SBD train / seg11valid: the reference recipe (docs/fcn_reference.md section 3).
_base_ = [
    './_base_/models/fcn32s_vgg16.py',
    './_base_/datasets/sbd_seg11valid.py',
    './_base_/schedules/fcn_reference_100k.py',
    './_base_/fcn_runtime.py',
]

# Stage 1 of 3: FCN-32s from the Caffe VGG16 weights (pretrain/vgg16_caffe.pth, written by
# tools/model_converters/vgg2mmseg.py), lr 1e-10, 100k iterations.
# The loss is SUMMED over non-ignored pixels (reduction='sum' in the model base), which is why
# the learning rate is this small; an averaged loss would need it ~2.5e5x larger.
model = dict(
    backbone=dict(
        init_cfg=dict(_delete_=True, type='Pretrained', checkpoint='pretrain/vgg16_caffe.pth')))
optim_wrapper = dict(optimizer=dict(lr=1e-10))
train_cfg = dict(max_iters=100000, val_interval=4000)
