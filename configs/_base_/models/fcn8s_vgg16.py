# The reference FCN-8s (Long, Shelhamer & Darrell): VGG16 with fc6/fc7 as convolutions, skips
# from pool3 and pool4, fixed bilinear upsampling, crops derived from the layer geometry.
# Input as for the Caffe VGG16 weights: BGR (mmcv loads BGR; no channel swap), the reference
# mean subtracted, no division by a std and no scaling by 1/255.
# The plugin is imported by ../fcn_runtime.py (custom_imports); include it, or set
# custom_imports = dict(imports=['fcn_plugin'], allow_failed_imports=False) yourself.
# Classes of the head's softmax: 21 on VOC; binary segmentation is num_classes = 2 (softmax over
# two classes, as in the paper; not mmseg's out_channels=1 sigmoid): a child config sets
# model = dict(decode_head=dict(num_classes=K)) and the datasets' classes.
data_preprocessor = dict(
    type='PadSegDataPreProcessor',  # pads mixed sizes, train and test
    mean=[104.00699, 116.66877, 122.67892],
    std=[1.0, 1.0, 1.0],
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    # mmseg's EncoderDecoder plus inference_precision ('fp32'/'fp16'/'bf16') and channels_last
    type='AutocastEncoderDecoder',
    inference_precision='fp32',
    channels_last=False,
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='VGG',
        depth=16,
        first_conv_padding=100,
        dropout_ratio=0.5,
        out_indices=(2, 3, 5),  # pool3 (stride 8), pool4 (stride 16), fc7 (stride 32)
        init_cfg=None),  # the recipes set dict(type='Pretrained', checkpoint=...)
    decode_head=dict(
        type='FCNSkipHead',
        in_channels=(256, 512, 4096),
        in_index=(0, 1, 2),
        num_classes=21,
        learnable_upsample=False,
        align_corners=False,
        # The reference sums the log-loss over non-ignored pixels.
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, reduction='sum')),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
