# The reference FCN-32s: no skip, fc7 scores upsampled x32.
_base_ = ['./fcn8s_vgg16.py']
model = dict(
    backbone=dict(out_indices=(5, )), decode_head=dict(in_channels=(4096, ), in_index=(0, )))
