# The FCN-8s skip head on a plain (non-dilated) ResNet-50, reusing mmseg's FCN R50 VOC12+aug
# recipe: only the decode head is ours, and the backbone keeps strides 8/16/32 (no dilation).
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py'
custom_imports = dict(imports=['fcn_plugin'], allow_failed_imports=False)

model = dict(
    type='AutocastEncoderDecoder',  # EncoderDecoder + inference_precision / channels_last
    backbone=dict(dilations=(1, 1, 1, 1), strides=(1, 2, 2, 2)),
    decode_head=dict(
        _delete_=True,
        type='FCNSkipHead',
        in_channels=(512, 1024, 2048),  # stages 2-4: strides 8, 16, 32
        in_index=(1, 2, 3),
        num_classes=21,
        # ResNet's maps are centred (x_image = stride * x): odd kernels (2 * factor - 1) put the
        # upsampled grids exactly on the finer ones; the crops are still derived (1, 1, 7).
        upsample_kernel_sizes=(3, 3, 15),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
# mmseg's loop and sampler (IterBasedTrainLoop, InfiniteSampler), except that --resume is exact
# and starts the sampler at the resumed iteration instead of loading and discarding the batches
# trained on.
train_cfg = dict(type='ResumableIterBasedTrainLoop')
# The per-sample data checks (fcn_plugin.datasets.transforms) around mmseg's loaders: a missing
# or corrupt file, a label value outside 0..20/255 or a label/image size mismatch stops with the
# file named. They go right after the loaders (before any resizing, which would hide a size
# mismatch); in test_pipeline LoadImageFromFile stays first (mmseg's inference API replaces it)
# and CheckSegSample compares the label with the image's original size.
train_pipeline = [
    dict(type='CheckSegFiles'),
    *_base_.train_pipeline[:2],  # LoadImageFromFile, LoadAnnotations
    dict(type='CheckSegSample', num_classes=21),
    *_base_.train_pipeline[2:],
]
test_pipeline = [
    _base_.test_pipeline[0],  # LoadImageFromFile
    dict(type='CheckSegFiles'),
    *_base_.test_pipeline[1:-1],  # Resize, LoadAnnotations
    dict(type='CheckSegSample', num_classes=21),
    _base_.test_pipeline[-1],  # PackSegInputs
]
train_dataloader = dict(
    sampler=dict(type='ResumableInfiniteSampler'),
    dataset=dict(datasets=[
        dict(d, pipeline=train_pipeline) for d in _base_.train_dataloader.dataset.datasets
    ]))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
# Collectives give up after 10 minutes instead of torch's 30 (--cfg-options
# env_cfg.dist_cfg.timeout=SECONDS): a frozen rank makes the job fail instead of hang.
env_cfg = dict(dist_cfg=dict(timeout=600))
# mmseg's default hooks (interval, max_keep_ckpts... kept), two of them ours (checkpoints written
# to a temporary file and renamed, only if finite, old ones deleted once the new one is complete;
# the test-metrics JSON written by rank 0 only), and the plugin's runtime hooks as named entries
# (what configs/_base_/fcn_runtime.py installs; a config's custom_hooks cannot drop them): what
# a run loads (--resume, fit rule, lr override), the config and label checks before the first
# iteration, the divergence guard, a clean stop on SIGTERM/SIGUSR1/SIGINT (the iteration reached
# saved), the confusion matrix of each evaluation.
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook'),
    logger=dict(type='RankZeroLoggerHook'),
    load_policy=dict(type='LoadPolicyHook'),
    preflight=dict(type='PreflightHook'),
    divergence=dict(type='DivergenceHook'),
    preemption=dict(type='PreemptionHook'),
    confusion_matrix=dict(type='ConfusionMatrixHook'),
    work_dir_lock=dict(type='WorkDirLockHook'))
# A fixed seed: reproducible runs, and a --resume that is exact (ResumableIterBasedTrainLoop).
randomness = dict(seed=0)
# The FCN paper's metrics (aAcc, mAcc, mIoU, fwIoU from one dataset-level confusion matrix).
val_evaluator = dict(_delete_=True, type='FCNMetric')
test_evaluator = val_evaluator
