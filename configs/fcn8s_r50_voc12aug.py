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
# mmseg's loop and sampler (IterBasedTrainLoop, InfiniteSampler), except that --resume starts
# the sampler at the resumed iteration instead of loading and discarding the batches trained on.
train_cfg = dict(type='ResumableIterBasedTrainLoop')
train_dataloader = dict(sampler=dict(type='ResumableInfiniteSampler'))
# The FCN paper's metrics (aAcc, mAcc, mIoU, fwIoU from one dataset-level confusion matrix).
val_evaluator = dict(_delete_=True, type='FCNMetric')
test_evaluator = val_evaluator
custom_hooks = [dict(type='ConfusionMatrixHook')]  # confusion matrices in the log dir
