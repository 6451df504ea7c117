# Runtime shared by every fcn_plugin config: mmseg's default runtime plus the plugin's hooks.
_base_ = ['mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['fcn_plugin'], allow_failed_imports=False)
# mmengine's Runner, except that a child config's top-level num_classes / classes / data_root /
# max_iters first reach every field derived from them (fcn_plugin/utils/config_vars.py); mmseg's
# tools/train.py and tools/test.py, and ours, build the runner named here.
runner_type = 'FCNRunner'
# The recipe trains and tests on full images of many sizes: cuDNN's autotuner would re-tune at
# every new size. Turn it on (--cfg-options env_cfg.cudnn_benchmark=True) where sizes repeat.
env_cfg = dict(cudnn_benchmark=False)

# The plugin's safety hooks (fcn_plugin/engine; README "Robustness"). A config that sets its
# own custom_hooks replaces this list: keep these in it.
custom_hooks = [
    # before the first iteration: pretrained files exist, head in_channels match the backbone,
    # num_classes matches the dataset; errors name the config key
    dict(type='ConfigCheckHook'),
    # before the first iteration: reads the label files (all, or 1000 spread over a large split,
    # 30 s at most) and stops on labels that cannot be right (all void, binary masks saved as
    # 0/255 or two grey levels, colours, values outside the classes), naming files and the fix
    # (tools/dataset_converters/masks2labels.py); warns about classes without pixels
    dict(type='DataCheckHook'),
    # a NaN/inf loss stops the run before it can be checkpointed; the message names the cause
    dict(type='DivergenceHook'),
    # checkpoints are written to a temporary file and renamed; --resume takes the newest
    # complete one; old checkpoints are deleted only once the new one is complete
    dict(type='AtomicCheckpointHook'),
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
