"""Convolution for CPU inference through NNPACK (Winograd/FFT), exact to fp32 rounding.

PyTorch's CPU convolution (oneDNN) computes every multiply-add directly. NNPACK, built into
PyTorch's x86 and ARM wheels, computes 3x3 convolutions with Winograd's F(6x6, 3x3) transform
(about 5x fewer multiplies) and larger kernels with FFTs. On 2 Zen 4 cores a VGG 3x3 layer runs
2-3x faster; the result differs from the direct sum by about 1e-5 of the output's range per layer
(5e-6 over the whole FCN-8s, well inside the 1e-4 the fast path promises). ``tools/benchmark.py``
measures both.

NNPACK is used for float32 CPU tensors with stride-1, undilated, ungrouped convolutions whose
padding is smaller than the kernel (its limits), when PyTorch was built with it; anything else
goes to :func:`torch.nn.functional.conv2d`. ``torch._nnpack_available()`` also initialises the
library: calling the op before it fails with "NNPACK SpatialConvolution_updateOutput failed".
"""
from functools import lru_cache
from typing import Optional

import torch
import torch.nn.functional as F


@lru_cache(maxsize=1)
def nnpack_available() -> bool:
    try:
        return bool(torch._nnpack_available())  # initialises NNPACK
    except (AttributeError, RuntimeError):
        return False


def use_nnpack(x: torch.Tensor, weight: torch.Tensor, padding: int) -> bool:
    # (NNPACK crashes the process, SIGFPE, on an input smaller than the kernel: F.conv2d raises)
    return (x.device.type == 'cpu' and x.dtype == torch.float32 and weight.dtype == torch.float32
            and x.dim() == 4 and padding < min(weight.shape[-2:])
            and min(x.shape[-2:]) + 2 * padding >= max(weight.shape[-2:]) and nnpack_available())


def conv2d(x: torch.Tensor,
           weight: torch.Tensor,
           bias: Optional[torch.Tensor],
           padding: int = 0) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=padding)`` (stride 1), through NNPACK where it can."""
    if use_nnpack(x, weight, padding):
        weight = weight.contiguous()
        # one image at a time: NNPACK's batched algorithm is 2-5x slower here than its
        # single-image inference one (measured at batch 2)
        outs = [
            torch._nnpack_spatial_convolution(image.contiguous(), weight, bias, [padding, padding])
            for image in x.split(1)
        ]
        return outs[0] if len(outs) == 1 else torch.cat(outs)
    return F.conv2d(x, weight, bias, padding=padding)
