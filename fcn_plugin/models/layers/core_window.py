"""Which cells of a zero-padded conv/pool stack depend on the image (its "core"), per axis.

The reference FCN pads conv1_1 by 100 pixels of zeros. In every later map, a cell whose receptive
field lies entirely in that padding does not depend on the image: away from the map's border it
is a per-channel constant (``relu(W c + b)`` of the constant below it), near the border it depends
on the distance to the border only. At 500x500 about a third of VGG16's convolution work is spent
on such cells. This module finds, for one axis of a layer stack and an image size:

- ``size``: the map's length;
- ``core``: the cells whose receptive field meets the image (they must be computed);
- ``interior``: the cells whose receptive field meets no padding of any layer below (outside the
  core they hold the per-channel constant);
- ``needed``: the input cells the next layer reads to produce its core.

A stack can be run on cores alone while every layer's ``needed`` cells lie in the interior of its
input: the cells read outside the input's core are then known constants. The first layer is
taken as reading the zero-padded image with padding 0 (the padding is part of its input map and
the constant below it is 0). All intervals are half-open ``[start, stop)``.
"""
from functools import lru_cache
from typing import NamedTuple, Sequence, Tuple

import torch.nn as nn


class Span(NamedTuple):
    start: int
    stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start


class LayerShape(NamedTuple):
    """One axis of a convolution or pooling: kernel, stride, padding, Caffe-style ceil rounding."""

    kernel: int
    stride: int = 1
    padding: int = 0
    ceil_mode: bool = False

    @classmethod
    def of(cls, layer: nn.Module) -> 'LayerShape':

        def first(v):
            return v[0] if isinstance(v, (tuple, list)) else v

        if isinstance(layer, nn.Conv2d):
            if first(layer.dilation) != 1 or layer.groups != 1:
                raise ValueError(f'{layer}: dilated or grouped convolutions are not planned')
        elif not isinstance(layer, nn.MaxPool2d) or first(layer.dilation) != 1:
            raise ValueError(f'{layer}: only Conv2d and MaxPool2d layers are planned')
        return cls(
            first(layer.kernel_size), first(layer.stride), first(layer.padding),
            bool(getattr(layer, 'ceil_mode', False)))

    def output_size(self, size: int) -> int:
        span = size + 2 * self.padding - self.kernel
        if span < 0:
            raise ValueError(f'an input of {size} is smaller than the kernel {self.kernel}')
        out = (-(-span // self.stride) if self.ceil_mode else span // self.stride) + 1
        if self.ceil_mode and (out - 1) * self.stride >= size + self.padding:
            out -= 1  # the last window must start inside the input (as torch and Caffe do)
        return out

    def touching(self, cells: Span, out_size: int) -> Span:
        """Outputs whose window meets ``cells`` of the input."""
        start = (cells.start + self.padding - self.kernel) // self.stride + 1
        stop = -(-(cells.stop + self.padding) // self.stride)
        return Span(max(start, 0), min(stop, out_size))

    def inside(self, cells: Span, out_size: int) -> Span:
        """Outputs whose window lies within ``cells`` of the input."""
        start = -(-(cells.start + self.padding) // self.stride)
        stop = (cells.stop + self.padding - self.kernel) // self.stride + 1
        return Span(max(start, 0), min(max(stop, start), out_size))

    def reads(self, outputs: Span) -> Span:
        """Input cells (padding included, may be negative) that ``outputs`` read."""
        return Span(outputs.start * self.stride - self.padding,
                    (outputs.stop - 1) * self.stride - self.padding + self.kernel)


class AxisStep(NamedTuple):
    """One layer's output along one axis, and what it read."""

    size: int
    core: Span
    interior: Span
    needed: Span  # input cells read to compute ``core``
    windowable: bool  # ``needed`` lies in the input's interior


@lru_cache(maxsize=256)
def plan_axis(layers: Tuple[LayerShape, ...], image_size: int) -> Tuple[AxisStep, ...]:
    """Follow one axis of an image of ``image_size`` through ``layers``.

    ``layers[0]``'s padding is taken as the zero margin around the image (its input map is the
    padded image, read with padding 0). Stops early at a layer the map is too small for.
    """
    margin = layers[0].padding
    size = image_size + 2 * margin
    core, interior = Span(margin, margin + image_size), Span(0, size)
    steps = []
    for index, layer in enumerate(layers):
        if index == 0:
            layer = layer._replace(padding=0)
        if size + 2 * layer.padding < layer.kernel:
            break  # the map is too small for this layer: the stack fails here anyway
        out_size = layer.output_size(size)
        out_core = layer.touching(core, out_size)
        needed = layer.reads(out_core)
        windowable = (
            interior.start <= needed.start and needed.stop <= interior.stop and out_core.length > 0)
        out_interior = layer.inside(interior, out_size)
        steps.append(AxisStep(out_size, out_core, out_interior, needed, windowable))
        size, core, interior = out_size, out_core, out_interior
    return tuple(steps)


def windowable_depth(layers: Sequence[LayerShape], height: int, width: int) -> int:
    """How many leading layers can run on their cores alone (0 if none, or if every core is the
    whole map, as without a margin: nothing would be saved)."""
    depth, saves = 0, False
    for y, x in zip(plan_axis(tuple(layers), height), plan_axis(tuple(layers), width)):
        if not (y.windowable and x.windowable):
            break
        depth += 1
        saves = saves or y.core.length < y.size or x.core.length < x.size
    return depth if saves else 0


def min_input_size(layers: Sequence[LayerShape]) -> int:
    """The smallest image side every layer of the stack can take (1 with a large enough margin;
    35 for a VGG16 padded by 16 with a 3x3 fc6)."""
    size = 1
    while True:
        n = size
        for layer in layers:
            if n + 2 * layer.padding < layer.kernel:
                break
            n = layer.output_size(n)
        else:
            return size
        size += 1
