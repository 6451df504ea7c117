# FCN-16s VGG16 on SBD train / seg11valid: the reference recipe (docs/fcn_reference.md section 3).
_base_ = [
    './_base_/models/fcn16s_vgg16.py',
    './_base_/datasets/sbd_seg11valid.py',
    './_base_/schedules/fcn_reference_100k.py',
    './_base_/fcn_runtime.py',
]

# Stage 2 of 3: FCN-16s initialised from the final FCN-32s checkpoint (every shared layer is
# copied; the new score_pool4 starts at zero), lr 1e-12, 100k iterations. Override the
# checkpoint with --cfg-options load_from=PATH.
# The loss is SUMMED over non-ignored pixels (reduction='sum' in the model base).
load_from = 'work_dirs/fcn32s_vgg16_voc/iter_100000.pth'
optim_wrapper = dict(optimizer=dict(lr=1e-12))
train_cfg = dict(max_iters=100000, val_interval=4000)
