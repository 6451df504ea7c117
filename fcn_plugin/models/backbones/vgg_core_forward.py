"""Exact fast inference of the padded VGG: compute each map's image core, fill in the rest.

With conv1_1 padded by 100, a third of VGG16's convolution work at 500x500 (more on smaller
images) goes to cells that see only padding (:mod:`..layers.core_window`). Here the layers run on
their cores while that is exact (through pool4 on the reference trunk, at every image size):

1. each layer reads its input core plus the few cells around it that it needs, which are
   per-channel constants (``0`` around the image, then ``relu(W c + b)``, unchanged by pooling),
   and computes only its own core, with padding 0;
2. where a full map is needed (a returned stage, or the first layer run in full), the cells
   outside the core are taken from the maps of an all-zero image of the same size: those cells
   never see the image, so they hold exactly those values, border effects included. They are
   computed once per size class (height and width modulo the stride at that depth, which fixes
   where the ceil-mode pools cut) on a small zero image and stretched by repeating an interior
   row and column; a few size classes are cached, and the cache is dropped when a weight changes;
3. the remaining layers run in full. All convolutions go through :func:`..layers.fast_conv.conv2d`.

The result equals the plain forward up to fp32 rounding (tested at every size from 1x1).
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..layers.core_window import LayerShape, Span, plan_axis, windowable_depth
from ..layers.fast_conv import conv2d


def pad_with(t: torch.Tensor, value: Optional[torch.Tensor], have: Tuple[Span, Span],
             want: Tuple[Span, Span]) -> torch.Tensor:
    """``t`` covers cells ``have`` (rows, columns); return cells ``want``, outside ``have`` filled
    with ``value`` (one per channel; ``None`` = 0)."""
    (hy, hx), (wy, wx) = have, want
    top, bottom = hy.start - wy.start, wy.stop - hy.stop
    left, right = hx.start - wx.start, wx.stop - hx.stop
    if value is None:
        return F.pad(t, (left, right, top, bottom))
    h, w = t.shape[-2:]
    t = t[..., max(-top, 0):h - max(-bottom, 0), max(-left, 0):w - max(-right, 0)]
    top, bottom, left, right = (max(v, 0) for v in (top, bottom, left, right))
    if not (top or bottom or left or right):
        return t
    out = t.new_empty(t.shape[0], t.shape[1], wy.length, wx.length)
    fill = value.view(1, -1, 1, 1)
    out[..., :top, :] = fill
    out[..., out.shape[-2] - bottom:, :] = fill
    out[..., :, :left] = fill
    out[..., :, out.shape[-1] - right:] = fill
    out[..., top:top + t.shape[-2], left:left + t.shape[-1]] = t
    return out


def max_pool_window(t: torch.Tensor, layer: nn.MaxPool2d) -> torch.Tensor:
    """Max pool over whole windows (no padding, no ceil); 2x2/2 as two strided maxima, which
    is 4-8x faster than ``max_pool2d`` on CPU and gives the same values."""
    if layer.kernel_size in (2, (2, 2)) and layer.stride in (2, (2, 2)) and \
            t.shape[-2] % 2 == 0 and t.shape[-1] % 2 == 0:
        rows = torch.maximum(t[..., 0::2, :], t[..., 1::2, :])
        return torch.maximum(rows[..., 0::2], rows[..., 1::2])
    return F.max_pool2d(t, layer.kernel_size, layer.stride)


def run_layer(layer: nn.Module, t: torch.Tensor, padding: Optional[int] = None) -> torch.Tensor:
    """A VGG layer in eval mode: conv + ReLU, or the max pool (``padding=0``: a window of the
    map, read without the layer's padding or ceil rounding)."""
    if isinstance(layer, nn.Conv2d):
        pad = layer.padding[0] if padding is None else padding
        return F.relu(conv2d(t, layer.weight, layer.bias, pad), inplace=True)
    return layer(t) if padding is None else max_pool_window(t, layer)


def constant_after(layer: nn.Module, value: torch.Tensor) -> torch.Tensor:
    """The per-channel constant a layer outputs where its whole window holds ``value``."""
    if not isinstance(layer, nn.Conv2d):
        return value
    patch = value.view(1, -1, 1, 1).expand(1, -1, *layer.kernel_size)
    return F.relu(F.conv2d(patch, layer.weight, layer.bias)).view(-1)


class ZeroImageMaps:
    """Maps of an all-zero image by size class: an LRU of ``maxsize``, reset on weight changes."""

    def __init__(self, maxsize: int = 8):
        self.maxsize = maxsize
        self.entries: 'OrderedDict[tuple, Dict[int, tuple]]' = OrderedDict()
        self.stamp = None

    def get(self, layers: Sequence[nn.Module], shapes: Tuple[LayerShape, ...], depth: int,
            keep: Sequence[int], size: Tuple[int, int], like: torch.Tensor) -> Dict[int, tuple]:
        params = [p for layer in layers[:depth] for p in layer.parameters(recurse=False)]
        stamp = (like.dtype, like.device, tuple((p.data_ptr(), p._version) for p in params))
        if stamp != self.stamp:
            self.entries.clear()
            self.stamp = stamp
        small = tuple(self.small_size(shapes, depth, keep, s) for s in size)
        key = (small, depth, tuple(keep))
        if key not in self.entries:
            self.entries[key] = self.compute(layers, shapes, depth, keep, small, like)
            if len(self.entries) > self.maxsize:
                self.entries.popitem(last=False)
        self.entries.move_to_end(key)
        return self.entries[key]

    @staticmethod
    def small_size(shapes, depth: int, keep: Sequence[int], size: int) -> int:
        """The smallest size with the same cuts as ``size`` and an interior in every kept map."""
        period = 1
        for shape in shapes[:depth]:
            period *= shape.stride
        small = size % period
        while small < size:
            steps = plan_axis(shapes, small)
            if all(steps[i].interior.length > 0 for i in keep):
                return small
            small += period
        return size

    @staticmethod
    def compute(layers, shapes, depth, keep, small, like) -> Dict[int, tuple]:
        margin = shapes[0].padding
        t = like.new_zeros(1, layers[0].in_channels, small[0] + 2 * margin, small[1] + 2 * margin)
        steps = [plan_axis(shapes, s) for s in small]
        maps = {}
        for index, layer in enumerate(layers[:depth]):
            t = run_layer(layer, t, padding=0 if index == 0 else None)
            if index in keep:
                maps[index] = (t, steps[0][index].interior.start, steps[1][index].interior.start)
        return maps


def stretch(t: torch.Tensor, dim: int, repeat_at: int, size: int) -> torch.Tensor:
    """Repeat index ``repeat_at`` of ``dim`` until the tensor has ``size`` there."""
    extra = size - t.shape[dim]
    if extra == 0:
        return t
    index = torch.cat([
        torch.arange(repeat_at + 1),
        torch.full((extra, ), repeat_at),
        torch.arange(repeat_at + 1, t.shape[dim])
    ]).to(t.device)
    return t.index_select(dim, index)


def core_forward(layers: Sequence[nn.Module], keep_layers: Sequence[int], x: torch.Tensor,
                 cache: ZeroImageMaps) -> Optional[List[torch.Tensor]]:
    """Eval-mode outputs of ``layers`` (conv+ReLU / max pool) at ``keep_layers``, or ``None``
    where no layer can run on its core (then the caller runs the plain forward)."""
    shapes = tuple(LayerShape.of(layer) for layer in layers)
    height, width = x.shape[-2:]
    depth = windowable_depth(shapes, height, width)
    if depth == 0:
        return None
    steps_y, steps_x = plan_axis(shapes, height), plan_axis(shapes, width)
    full_at = sorted({i for i in keep_layers if i < depth} | ({depth - 1} - {len(layers) - 1}))
    zero_maps = cache.get(layers, shapes, depth, full_at, (height, width), x)

    margin = shapes[0].padding
    have = (Span(margin, margin + height), Span(margin, margin + width))
    value, t, outputs = None, x, {}
    for index, layer in enumerate(layers[:depth]):
        sy, sx = steps_y[index], steps_x[index]
        want = (sy.core, sx.core)
        if index == 0 and depth > 1 and isinstance(layers[1], nn.Conv2d):
            # the first layer reads zero padding, which costs no copy: let it also compute the
            # constant ring the second layer reads, so that its large map is not copied
            want = (steps_y[1].needed, steps_x[1].needed)
        shape = shapes[0]._replace(padding=0) if index == 0 else shapes[index]  # see plan_axis
        reads = (shape.reads(want[0]), shape.reads(want[1]))
        t = run_layer(layer, pad_with(t, value, have, reads), padding=0)
        value = constant_after(layer, x.new_zeros(layer.in_channels) if value is None else value)
        have = want
        if index in full_at:
            zero, row, col = zero_maps[index]
            full = stretch(stretch(zero, 2, row, sy.size), 3, col, sx.size)
            full = full.expand(t.shape[0], -1, -1, -1).contiguous()
            full[..., sy.core.start:sy.core.stop, sx.core.start:sx.core.stop] = \
                pad_with(t, value, have, (sy.core, sx.core))
            outputs[index] = full
    t = outputs.get(depth - 1, t)
    for index in range(depth, len(layers)):
        t = run_layer(layers[index], t)
        outputs[index] = t
    return [outputs[i] for i in keep_layers]
