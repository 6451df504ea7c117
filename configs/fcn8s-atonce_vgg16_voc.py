# FCN-8s-atonce VGG16 on SBD train / seg11valid: the reference recipe (README, "Training on
# real VOC").
_base_ = [
    './_base_/models/fcn8s-atonce_vgg16.py',
    './_base_/datasets/sbd_seg11valid.py',
    './_base_/schedules/fcn_reference_100k.py',
    './_base_/fcn_runtime.py',
]

# FCN-8s at-once: one stage from the Caffe VGG16 weights (pretrain/vgg16_caffe.pth, written by
# tools/model_converters/vgg2mmseg.py), pool4/pool3 scaled by 0.01/0.0001, lr 1e-10, 300k
# iterations. The loss is SUMMED over non-ignored pixels (reduction='sum' in the model base).
model = dict(
    backbone=dict(
        init_cfg=dict(_delete_=True, type='Pretrained', checkpoint='pretrain/vgg16_caffe.pth')))
optim_wrapper = dict(optimizer=dict(lr=1e-10))
train_cfg = dict(max_iters=300000, val_interval=4000)
