"""Which upsampling kernel lines each coarse grid up with the next one (FCNSkipHead's default).

A transposed convolution by ``f`` with kernel ``k`` puts its output grid at an offset that
depends on ``k``'s parity. The paper's ``k = 2f`` aligns the reference's padded VGG exactly; on
"same"-padded backbones whose maps are centred (``x_image = stride * i``: ResNet, MiT,
MobileNetV2) it is half a fine cell off, and ``k = 2f - 1`` is exact. With the head's default
(``upsample_kernel_sizes=None``) each fixed upsampling takes whichever of the two aligns the
grids it joins, for the maps at hand (attached by the backbone, given as ``in_coord_maps``, or
assumed centred). Where neither does (a backbone's grid off by a fraction of a cell that the head
was not told about), the finer grid is taken as lying on the nearest aligned position, with a
warning: the result is off by that fraction, not a crash.
"""
import warnings
from fractions import Fraction
from typing import List, NamedTuple, Optional, Sequence

from .coord_map import CoordMap


class UpsamplingPlan(NamedTuple):
    kernels: List[Optional[int]]  # per upsampling (fusions coarse to fine, final); None = own
    fine_maps: List[CoordMap]  # the skip maps (coarse to fine) as fused, nudged if needed
    final_offset: Fraction  # the stride-1 map's offset after the final upsampling


def _misalignment(offset: Fraction, stride: Fraction) -> Fraction:
    """How far ``offset`` is from a whole number of ``stride`` (0 = aligned), in cells."""
    cells = offset / stride
    return abs(cells - round(cells))


def _choose(kernel: int, factor: int, auto: bool, misfit) -> int:
    candidates = [kernel
                  ] + ([2 * factor - 1 if kernel == 2 * factor else 2 * factor] if auto else [])
    for k in candidates:
        if misfit(k) == 0:
            return k
    return kernel


def plan_upsampling(maps: Sequence[CoordMap],
                    upsamplers: Sequence,
                    auto: bool,
                    what: str = 'FCNSkipHead') -> UpsamplingPlan:
    """``maps``: the inputs' maps, fine to coarse; ``upsamplers``: the fusions' upsamplings
    (coarse to fine), then the final one (:class:`BilinearUpsample` s)."""
    cmap, kernels, fine_maps = maps[-1], [], []
    for up, fine in zip(upsamplers[:-1], reversed(maps[:-1])):
        k = _choose(
            up.kernel_size, up.stride, auto, lambda k: _misalignment(
                fine.offset - cmap.then_deconv(k, up.stride).offset, fine.stride))
        up_map = cmap.then_deconv(k, up.stride)
        off = _misalignment(fine.offset - up_map.offset, fine.stride)
        if off and auto:
            warnings.warn(f'{what}: the stride-{fine.stride} grids are misaligned by {off} of a '
                          'cell for either upsampling kernel; aligning to the nearest cell. '
                          'Give the backbone\'s exact in_coord_maps to remove this error.')
            cells = round((fine.offset - up_map.offset) / fine.stride)
            fine = CoordMap(fine.stride, up_map.offset + cells * fine.stride)
        kernels.append(None if k == up.kernel_size else k)
        fine_maps.append(fine)
        cmap = CoordMap(fine.stride, max(up_map.offset, fine.offset))
    final = upsamplers[-1]
    k = _choose(final.kernel_size, final.stride, auto,
                lambda k: _misalignment(cmap.then_deconv(k, final.stride).offset, Fraction(1)))
    offset = cmap.then_deconv(k, final.stride).offset
    if auto and _misalignment(offset, Fraction(1)):
        warnings.warn(f'{what}: the final scores are misaligned with the image by '
                      f'{_misalignment(offset, Fraction(1))} of a pixel; rounding.')
        offset = Fraction(round(offset))
    kernels.append(None if k == final.kernel_size else k)
    return UpsamplingPlan(kernels, fine_maps, offset)
