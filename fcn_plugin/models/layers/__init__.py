from .bilinear_upsample import BilinearUpsample, bilinear_kernel
from .coord_map import CoordMap
from .crop import common_window, crop_to_input, input_crop_start
from .feature_maps import FeatureMaps
from .skip_fusion import SkipFusion

__all__ = [
    'BilinearUpsample', 'bilinear_kernel', 'CoordMap', 'common_window', 'crop_to_input',
    'FeatureMaps', 'SkipFusion', 'input_crop_start'
]
