# The reference solver ("heavy" online learning): SGD, momentum 0.99, weight decay 5e-4, biases
# at 2x the learning rate and without weight decay, a FIXED learning rate (no warm-up, no decay),
# 100k iterations of batch 1; validate and checkpoint every 4000 iterations.
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
# ResumableIterBasedTrainLoop (fcn_plugin.engine): mmengine's IterBasedTrainLoop, except that
# --resume starts the sampler at the resumed iteration instead of loading and discarding every
# batch already trained on (needs ResumableInfiniteSampler in train_dataloader).
# A child's `max_iters = N` (or train_cfg.max_iters) reaches the loop and any schedule ending at
# it (derived_max_iters records the value they were derived from; fcn_plugin/utils/config_vars.py)
max_iters = 100000
derived_max_iters = max_iters
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='RankZeroLoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=4000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
