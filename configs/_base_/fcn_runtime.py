# Runtime shared by every fcn_plugin config: mmseg's default runtime plus the plugin's hooks.
_base_ = ['mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['fcn_plugin'], allow_failed_imports=False)
# mmengine's Runner, except that a child config's top-level num_classes / classes / data_root /
# max_iters first reach every field derived from them (fcn_plugin/utils/config_vars.py); mmseg's
# tools/train.py and tools/test.py, and ours, build the runner named here.
runner_type = 'FCNRunner'
# The recipe trains and tests on full images of many sizes: cuDNN's autotuner would re-tune at
# every new size. Turn it on (--cfg-options env_cfg.cudnn_benchmark=True) where sizes repeat.
# A distributed job stops when a rank cannot go on: collectives give up after dist_cfg.timeout
# seconds (torch's default: 30 min), so a frozen or lost rank makes the others fail instead of
# hanging (fcn_plugin/utils/launch.py). Change it: --cfg-options env_cfg.dist_cfg.timeout=SECONDS
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(timeout=600))

# The plugin's safety hooks (fcn_plugin/engine; README "Robustness"). A config that sets its
# own custom_hooks replaces this list: keep these in it. Two more are default hooks, selected by
# the schedule (configs/_base_/schedules/fcn_reference_100k.py) or the config's default_hooks
# (not here: as in mmseg, default_hooks lives in the schedule, and no key may be in two bases):
#   checkpoint=dict(type='AtomicCheckpointHook', ...): CheckpointHook's arguments; checkpoints
#     and last_checkpoint are written to a temporary file and renamed, old checkpoints are
#     deleted only once the new one is complete
#   logger=dict(type='RankZeroLoggerHook', ...): LoggerHook's arguments; after a distributed
#     test only rank 0 writes the metrics JSON
custom_hooks = [
    # --resume continues the work dir's highest-numbered complete checkpoint (repairing a
    # missing or stale last_checkpoint); with load_from also set (a stage initialised from the previous
    # one) it starts from load_from only while the work dir holds no checkpoint
    dict(type='ResumeHook'),
    # before the first iteration: pretrained files exist, head in_channels match the backbone,
    # num_classes matches the dataset; errors name the config key
    dict(type='ConfigCheckHook'),
    # a checkpoint that does not fit the model is an error naming the keys: load_from in training
    # may only lack the new stage's score layers; test, val and --resume need every weight
    dict(type='CheckpointFitHook'),
    # before the first iteration: reads the label files (all, or 1000 spread over a large split,
    # 30 s at most) and stops on labels that cannot be right (all void, binary masks saved as
    # 0/255 or two grey levels, colours, values outside the classes), naming files and the fix
    # (tools/dataset_converters/masks2labels.py); warns about classes without pixels
    dict(type='DataCheckHook'),
    # a NaN/inf loss or weight stops the run, and no checkpoint holding NaN/inf is written or
    # resumed; the message names the cause, the last finite checkpoint and the command to resume
    # it at a lower lr (check_interval: check the weights every N iterations, 0: at saves only)
    dict(type='DivergenceHook'),
    # --resume --cfg-options optim_wrapper.optimizer.lr=X continues at X, not at the saved lr
    dict(type='LrOverrideHook'),
    # iteration i draws its random numbers from (seed, i): --resume is bit-identical on CPU
    dict(type='ExactResumeHook'),
    # every validation/test writes its confusion matrix (.npy, .csv, heatmap .png) to the log dir
    dict(type='ConfusionMatrixHook'),
]
# A fixed seed makes runs reproducible and lets --resume replay the data order exactly.
randomness = dict(seed=0)
# TensorBoard (pip install tensorboard): log losses, lr and metrics there too with
#   vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
#   visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
# in your config (events under <work_dir>/<timestamp>/vis_data/; tensorboard --logdir work_dirs)
