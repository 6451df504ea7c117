"""Cropping two grids to their common window (FCN's ``Crop`` layer, generalised)."""
from typing import Optional, Tuple

import torch

from ...utils.torch_compat import sym_min
from .coord_map import CoordMap


def _as_index(value, what: str) -> int:
    if value.denominator != 1:
        raise ValueError(
            f'{what}: the grids are misaligned by a fraction of a cell ({value}); with centred '
            'features (offset 0, e.g. ResNet) use odd upsampling kernels (2 * stride - 1), with '
            "the reference's padded VGG the paper's even ones (2 * stride)")
    return int(value)


def common_window(a: CoordMap, size_a: int, b: CoordMap,
                  size_b: int) -> Tuple[int, int, int, CoordMap]:
    """Where two blobs of one stride overlap on the image, along one axis.

    Returns ``(start_a, start_b, length, map)``: the overlap is ``a[start_a:start_a + length]`` and
    ``b[start_b:start_b + length]``, and ``map`` is its coord map. In the reference the finer skip
    scores cover the upsampled coarse scores, so this is the reference's crop of the skip scores at
    5 (pool4) or 9 (pool3); other backbones may need the upsampled scores cropped instead.
    """
    start_a, start_b, cmap = window_start(a, b)
    # sym_min: under torch.export (ONNX export) the sizes are symbolic and so is the length
    length = sym_min(size_a - start_a, size_b - start_b)
    if length <= 0:
        raise ValueError(f'feature maps of sizes {size_a} and {size_b} do not overlap')
    return start_a, start_b, length, cmap


def window_start(a: CoordMap, b: CoordMap) -> Tuple[int, int, CoordMap]:
    """Where two grids of one stride start to overlap: ``(start_a, start_b, map)``, the part of
    :func:`common_window` that does not depend on the blobs' sizes (one of the starts is 0)."""
    if a.stride != b.stride:
        raise ValueError(f'cannot overlap grids of strides {a.stride} and {b.stride}')
    start = max(a.offset, b.offset)
    return (_as_index((start - a.offset) / a.stride,
                      'crop'), _as_index((start - b.offset) / b.stride,
                                         'crop'), CoordMap(a.stride, start))


def input_crop_start(cmap: CoordMap) -> int:
    """Index of image pixel 0 in stride-1 scores with map ``cmap`` (19 for FCN-32s)."""
    if cmap.stride != 1:
        raise ValueError(f'scores at stride {cmap.stride} cannot be cropped to the input; the '
                         'last upsampling must bring them to stride 1')
    return _as_index(-cmap.offset, 'crop to input')


def crop_to_input(scores: torch.Tensor, cmap: CoordMap,
                  input_size: Optional[Tuple[int, int]]) -> torch.Tensor:
    """Crop stride-1 ``scores`` with map ``cmap`` to exactly the input's pixels ``(H, W)``.

    Without ``input_size`` the crop starts at image pixel 0 and keeps the rest of the map (at
    least the input's size, possibly more): aligned, for callers that do not know the size.
    """
    start = input_crop_start(cmap)
    if input_size is None:
        return scores[..., start:, start:]
    height, width = input_size
    if start < 0 or start + height > scores.shape[-2] or start + width > scores.shape[-1]:
        raise ValueError(
            f'upsampled scores of size {tuple(scores.shape[-2:])} starting at image pixel '
            f'{-start} do not cover the {height}x{width} input; the backbone needs more padding '
            '(the reference pads conv1_1 by 100)')
    return scores[..., start:start + height, start:start + width]
