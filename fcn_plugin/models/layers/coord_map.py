"""Affine coordinate maps between feature maps and the input image (Caffe's ``coord_map``).

Every convolution, pooling and transposed convolution maps the coordinates of its output to the
coordinates of its input by an affine function. Composing those functions from the image to a
feature map gives, for each feature-map index ``x``, the image coordinate of the centre of its
receptive field::

    x_image = stride * x + offset

FCN aligns a coarse, upsampled score map with a finer one (and finally with the image) by
cropping the larger one at the offset where the two grids coincide. The reference code derives
those offsets from the layer geometry with Caffe's ``coord_map``; :class:`CoordMap` does the same
here, so the crops of FCN-32s/16s/8s (19; 5, 27; 5, 9, 31 on the reference VGG16 trunk) are
computed, never written down.
"""
from fractions import Fraction
from typing import Iterable, NamedTuple, Tuple, Union

import torch.nn as nn

Number = Union[int, float, Fraction]


def _pair(value) -> Tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class CoordMap(NamedTuple):
    """``x_image = stride * x + offset`` (exact rationals, one map for both axes)."""

    stride: Fraction = Fraction(1)
    offset: Fraction = Fraction(0)

    @classmethod
    def of(cls, stride: Number, offset: Number = 0) -> 'CoordMap':
        return cls(Fraction(stride), Fraction(offset))

    def then_conv(self,
                  kernel_size: int,
                  stride: int = 1,
                  padding: int = 0,
                  dilation: int = 1) -> 'CoordMap':
        """The map of the output of a convolution or pooling applied to this map's blob."""
        extent = (kernel_size - 1) * dilation + 1
        centre = Fraction(extent - 1, 2) - padding  # output x -> input stride * x + centre
        return CoordMap(self.stride * stride, self.offset + self.stride * centre)

    def then_deconv(self, kernel_size: int, stride: int = 1, padding: int = 0) -> 'CoordMap':
        """The map of the output of a transposed convolution applied to this map's blob."""
        centre = Fraction(kernel_size - 1, 2) - padding  # input x -> output stride * x + centre
        return CoordMap(self.stride / stride, self.offset - self.stride * centre / stride)

    def then(self, layer: nn.Module) -> 'CoordMap':
        """Follow one layer; layers that keep the grid (ReLU, dropout, 1x1...) pass through."""
        if isinstance(layer, nn.ConvTranspose2d):
            (k, _), (s, _), (p, _) = (_pair(layer.kernel_size), _pair(layer.stride),
                                      _pair(layer.padding))
            return self.then_deconv(k, s, p)
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s, p = (_pair(layer.kernel_size)[0], _pair(layer.stride)[0], _pair(layer.padding)[0])
            d = _pair(getattr(layer, 'dilation', 1))[0]
            return self.then_conv(k, s, p, d)
        if hasattr(layer, 'coord_map_through'):
            return layer.coord_map_through(self)
        return self

    def through(self, layers: Iterable[nn.Module]) -> 'CoordMap':
        cmap = self
        for layer in layers:
            cmap = cmap.then(layer)
        return cmap
