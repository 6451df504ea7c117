"""A tuple of feature maps that also says where each map lies on the input image."""
from typing import Optional, Sequence, Tuple

import torch

from .coord_map import CoordMap


class FeatureMaps(tuple):
    """The backbone's output tuple, plus the geometry that FCN's crops are derived from.

    It behaves exactly like the tuple MMSegmentation passes from a backbone to its heads; the
    extra attributes travel with it (a neck that builds a new tuple drops them, and heads then
    fall back to their configured geometry):

    - ``coord_maps``: one :class:`CoordMap` per map, ``x_image = stride * x + offset``.
    - ``input_size``: ``(H, W)`` of the batch the maps were computed from; FCN's logits are
      cropped to exactly this size.
    """

    coord_maps: Optional[Tuple[CoordMap, ...]]
    input_size: Optional[Tuple[int, int]]

    def __new__(cls,
                maps: Sequence[torch.Tensor],
                coord_maps: Sequence[CoordMap] = None,
                input_size: Sequence[int] = None):
        self = super().__new__(cls, maps)
        if coord_maps is not None and len(coord_maps) != len(self):
            raise ValueError(f'{len(self)} feature maps but {len(coord_maps)} coord maps')
        self.coord_maps = None if coord_maps is None else tuple(coord_maps)
        # sizes stay symbolic under torch.export (ONNX export): int() would bake the traced size in
        self.input_size = None if input_size is None else tuple(
            s if isinstance(s, torch.SymInt) else int(s) for s in input_size)
        return self
