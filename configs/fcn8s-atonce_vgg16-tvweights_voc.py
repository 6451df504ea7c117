# FCN-8s at-once on SBD train / seg11valid, for users with torchvision's VGG16 ImageNet weights
# instead of the Caffe ones. Convert them with
#   python tools/model_converters/vgg2mmseg.py vgg16-397923af.pth pretrain/vgg16_torchvision.pth
# torchvision's weights expect RGB scaled to [0, 1] and normalised by the ImageNet mean/std,
# i.e. in mmseg's 0-255 units RGB minus (123.675, 116.28, 103.53) divided by
# (58.395, 57.12, 57.375). Everything else is the reference recipe (summed loss, SGD 0.99,
# fixed lr 1e-10, 300k iterations): the lr was NOT re-tuned for the ~58x smaller inputs, and with
# these weights FCN results reported elsewhere drop by a few mean IU (FCN-32s ~58-62) unless the
# recipe is re-tuned.
_base_ = ['./fcn8s-atonce_vgg16_voc.py']
data_preprocessor = dict(  # type, padding: as in the model base
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        init_cfg=dict(
            _delete_=True, type='Pretrained', checkpoint='pretrain/vgg16_torchvision.pth')))
