# The reference FCN-16s: one skip, from pool4.
_base_ = ['./fcn8s_vgg16.py']
model = dict(
    backbone=dict(out_indices=(3, 5)), decode_head=dict(in_channels=(512, 4096), in_index=(0, 1)))
