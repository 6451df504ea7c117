# The reference FCN-8s at-once: FCN-8s trained in one stage from VGG16, with pool4 scaled by
# 0.01 and pool3 by 0.0001 before their score layers (fixed factors).
_base_ = ['./fcn8s_vgg16.py']
model = dict(decode_head=dict(skip_scales=(0.0001, 0.01)))  # (pool3, pool4)
