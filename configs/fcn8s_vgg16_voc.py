# FCN-8s VGG16 on SBD train / seg11valid: the reference recipe (docs/fcn_reference.md section 3).
_base_ = [
    './_base_/models/fcn8s_vgg16.py',
    './_base_/datasets/sbd_seg11valid.py',
    './_base_/schedules/fcn_reference_100k.py',
    './_base_/fcn_runtime.py',
]

# Stage 3 of 3: FCN-8s initialised from the final FCN-16s checkpoint (every shared layer is
# copied; the new score_pool3 starts at zero), lr 1e-14, 100k iterations. Override the
# checkpoint with --cfg-options load_from=PATH.
# The loss is SUMMED over non-ignored pixels (reduction='sum' in the model base).
load_from = 'work_dirs/fcn16s_vgg16_voc/iter_100000.pth'
optim_wrapper = dict(optimizer=dict(lr=1e-14))
train_cfg = dict(max_iters=100000, val_interval=4000)
