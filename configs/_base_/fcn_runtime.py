# Runtime shared by every fcn_plugin config: mmseg's default runtime, the hooks that keep long runs
# safe (fcn_plugin/runtime; README "Robustness") and the reference's checkpointing.
_base_ = ['mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['fcn_plugin'], allow_failed_imports=False)
# The recipe trains and tests on full images of many sizes: cuDNN's autotuner would re-tune at
# every new size. Turn it on (--cfg-options env_cfg.cudnn_benchmark=True) where sizes repeat.
# A distributed job stops when a rank cannot go on: collectives give up after dist_cfg.timeout
# seconds (torch's default: 30 min), so a frozen or lost rank makes the others fail instead of
# hanging (fcn_plugin/utils/launch.py). Change it: --cfg-options env_cfg.dist_cfg.timeout=SECONDS
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(timeout=600))
# Default hooks are merged by name: a config that sets its own custom_hooks keeps all of these;
# change one's arguments with e.g. default_hooks = dict(checkpoint=dict(interval=100)), turn one
# of the plugin's off with default_hooks = dict(divergence=dict(type='DisabledHook')).
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    # LoggerHook's arguments; after a distributed test only rank 0 writes the metrics JSON
    logger=dict(type='RankZeroLoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # CheckpointHook's arguments; checkpoints are written to a temporary file and renamed, only
    # if every weight and optimizer-state tensor is finite; old ones are deleted only once the new
    # one is complete (the disk must hold max_keep_ckpts + 1)
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=4000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
    # what a run loads: --resume continues the highest-numbered complete checkpoint where the
    # checkpoint hook writes them (load_from only starts a run that has none); a checkpoint that
    # does not fit the model is an error naming the keys (load_from in training may only lack
    # the new stage's score layers); a resumed checkpoint must be finite; --resume --cfg-options
    # optim_wrapper.optimizer.lr=X continues at X, not at the saved rate
    load_policy=dict(type='LoadPolicyHook'),
    # before the first iteration (and before testing): config mistakes (pretrained files,
    # head in_channels vs the backbone, num_classes vs the dataset, a top-level variable that
    # reached nothing) and labels that cannot be right (all void, binary masks saved as 0/255,
    # colours, values outside the classes; 1000 files or 30 s per split), naming key or file
    preflight=dict(type='PreflightHook'),
    # a NaN/inf loss or weight stops the run; the message names the cause, the last checkpoint
    # and the command to resume it at a lower lr (check_interval: every N iterations, 0: never)
    divergence=dict(type='DivergenceHook'),
    # SIGTERM, SIGUSR1 (Slurm's --signal=B:USR1@120) or SIGINT (Ctrl-C): every rank finishes the
    # current iteration, the iteration reached is saved, the run exits with 128 + the signal's
    # number and names the checkpoint and the --resume command (docs/training.md, preemption)
    preemption=dict(type='PreemptionHook'),
    # every validation/test writes its confusion matrix (.npy, .csv, heatmap .png) to the log dir
    confusion_matrix=dict(type='ConfusionMatrixHook'),
    # one training run per work dir: a second one stops at once, naming the run that holds it
    # (a killed run leaves no stuck lock); a new run never touches an earlier run's checkpoints
    work_dir_lock=dict(type='WorkDirLockHook'))
# A fixed seed makes runs reproducible and --resume exact (ResumableIterBasedTrainLoop).
randomness = dict(seed=0)
# TensorBoard (pip install tensorboard): log losses, lr and metrics there too with
#   vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
#   visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
# in your config (events under <work_dir>/<timestamp>/vis_data/; tensorboard --logdir work_dirs)
