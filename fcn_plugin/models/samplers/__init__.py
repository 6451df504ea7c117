from .spatial_pixel_sampler import SpatialPixelSampler

__all__ = ['SpatialPixelSampler']
