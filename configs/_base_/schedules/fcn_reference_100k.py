# The reference solver ("heavy" online learning): SGD, momentum 0.99, weight decay 5e-4, biases
# at 2x the learning rate and without weight decay, a FIXED learning rate (no warm-up, no decay),
# 100k iterations of batch 1; validate (and checkpoint: ../fcn_runtime.py) every 4000 iterations.
# The learning rate is tiny (1e-10 for FCN-32s) because the loss is SUMMED over the non-ignored
# pixels (reduction='sum' in configs/_base_/models): ~2.5e5 pixels for a 500x500 image. Each top
# config sets its stage's lr.
optimizer = dict(type='SGD', lr=1e-10, momentum=0.99, weight_decay=5e-4)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    clip_grad=None,
    paramwise_cfg=dict(bias_lr_mult=2.0, bias_decay_mult=0.0))
param_scheduler = []  # fixed learning rate
# ResumableIterBasedTrainLoop (fcn_plugin.runtime): mmengine's IterBasedTrainLoop whose --resume
# is bit-identical and starts the sampler at the resumed iteration instead of loading and
# discarding every batch already trained on (needs ResumableInfiniteSampler in train_dataloader).
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=100000, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
