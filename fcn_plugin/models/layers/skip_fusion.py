"""FCN's skip connection: score a finer feature map and add it to upsampled coarse scores."""
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ...utils.torch_compat import autocast_enabled
from .bilinear_upsample import BilinearUpsample
from .coord_map import CoordMap
from .crop import common_window


@MODELS.register_module()
class SkipFusion(BaseModule):
    """``fused = crop(upsample(coarse_scores)) + crop(score(skip_scale * fine_features))``.

    One skip of FCN-16s (pool4: ``upscore2`` + ``score_pool4``) or FCN-8s (pool3:
    ``upscore_pool4`` + ``score_pool3``):

    - ``score``: 1x1 convolution with bias from ``in_channels`` to ``num_classes``, initialised to
      zero so that a net grown from the coarser stage starts with exactly its predictions.
    - ``upsample``: :class:`BilinearUpsample` by ``stride`` (2 in FCN), fixed by default.
    - ``skip_scale``: the at-once variant scales pool4 by 0.01 and pool3 by 1e-4 before scoring,
      so that the finer, larger-magnitude features do not swamp the coarse scores early on.

    The two score maps are cropped to the window where their grids coincide on the image, derived
    from their :class:`CoordMap` s (the reference crops the pool4 scores at 5, pool3 at 9).

    Shapes: ``coarse (N, K, h, w)`` and ``fine (N, C, h', w')`` give ``(N, K, h'', w'')`` where
    ``h''`` is the overlap, ``(h - 1) * stride + kernel_size`` in the reference.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 stride: int = 2,
                 skip_scale: float = 1.0,
                 upsample_kernel_size: Optional[int] = None,
                 learnable_upsample: bool = False,
                 init_cfg: Union[dict, None] = None):
        super().__init__(init_cfg=init_cfg)
        self.stride = stride
        self.skip_scale = skip_scale
        self.score = nn.Conv2d(in_channels, num_classes, 1)
        self.upsample = BilinearUpsample(num_classes, stride, upsample_kernel_size,
                                         learnable_upsample)
        self._zero_score()

    def _zero_score(self) -> None:
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:
            self._zero_score()
            self.upsample.reset_bilinear()

    def scored(self, fine: torch.Tensor) -> torch.Tensor:
        """``score(skip_scale * fine)``. In fp16/bf16 (autocast) the scale is applied to the fp32
        scores instead, ``skip_scale * (W fine) + b``: the at-once 1e-4 would push pool3's
        features into fp16's subnormal range, where they lose their digits."""
        if self.skip_scale == 1:
            return self.score(fine)
        if fine.dtype == torch.float32 and not autocast_enabled(fine.device.type):
            return self.score(fine * self.skip_scale)
        unscaled = F.conv2d(fine, self.score.weight)
        return unscaled.float() * self.skip_scale + self.score.bias.float().view(1, -1, 1, 1)

    def forward(self,
                coarse: torch.Tensor,
                fine: torch.Tensor,
                coarse_map: Optional[CoordMap] = None,
                fine_map: Optional[CoordMap] = None,
                kernel_size: Optional[int] = None) -> Tuple[torch.Tensor, CoordMap]:
        """Fuse; without maps both grids are taken as centred (``x_image = stride * x``).
        ``kernel_size`` overrides the fixed upsampling's (see ``upsampling_plan``)."""
        if coarse_map is None or fine_map is None:
            coarse_map, fine_map = CoordMap.of(self.stride), CoordMap.of(1)
        up = self.upsample(coarse, kernel_size)
        up_map = self.upsample.coord_map_through(coarse_map, kernel_size)
        skip = self.scored(fine)
        r_up, r_skip, height, fused_map = common_window(up_map, up.shape[-2], fine_map,
                                                        skip.shape[-2])
        c_up, c_skip, width, _ = common_window(up_map, up.shape[-1], fine_map, skip.shape[-1])
        return (up[..., r_up:r_up + height, c_up:c_up + width] +
                skip[..., r_skip:r_skip + height, c_skip:c_skip + width]), fused_map
