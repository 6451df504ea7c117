"""Class-wise transposed convolution initialised to bilinear interpolation (FCN's ``upscore``)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...utils.torch_compat import is_compiling


def bilinear_kernel(kernel_size: int) -> torch.Tensor:
    """The 2D bilinear kernel of the reference: ``(1 - |i - c| / f) * (1 - |j - c| / f)``.

    ``f = (k + 1) // 2`` and ``c = f - 1`` for odd ``k``, ``f - 0.5`` for even ``k``; a transposed
    convolution with stride ``f`` and this kernel interpolates bilinearly.
    """
    factor = (kernel_size + 1) // 2
    centre = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float64)
    filt = 1 - (og - centre).abs() / factor
    return (filt[:, None] * filt[None, :]).float()


def class_diagonal_bilinear_weight(channels: int, kernel_size: int) -> torch.Tensor:
    """Weight ``(channels, channels, k, k)``: a bilinear kernel from each class to itself only."""
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    index = torch.arange(channels)
    weight[index, index] = bilinear_kernel(kernel_size)
    return weight


class BilinearUpsample(nn.Module):
    """Upsample ``channels`` score maps by ``stride`` with a transposed convolution (no bias).

    The weight has the full ``(C, C, k, k)`` shape of the reference's ``Deconvolution`` layer (so
    reference checkpoints load unchanged) and starts class-diagonal bilinear. With
    ``learnable=False`` (the reference) it is a buffer: saved and loaded, never trained and not
    counted among the parameters. ``kernel_size`` defaults to ``2 * stride`` as in the paper.

    Shapes: ``(N, C, h, w) -> (N, C, (h - 1) * stride + k, (w - 1) * stride + k)``.
    """

    def __init__(self,
                 channels: int,
                 stride: int,
                 kernel_size: int = None,
                 learnable: bool = False):
        super().__init__()
        self.channels = channels
        self.stride = stride
        self.kernel_size = kernel_size or 2 * stride
        self.learnable = learnable
        weight = class_diagonal_bilinear_weight(channels, self.kernel_size)
        if learnable:
            self.weight = nn.Parameter(weight)
        else:
            self.register_buffer('weight', weight)

    def reset_bilinear(self) -> None:
        with torch.no_grad():
            self.weight.copy_(class_diagonal_bilinear_weight(self.channels, self.kernel_size))

    def coord_map_through(self, cmap, kernel_size: int = None):
        return cmap.then_deconv(kernel_size or self.kernel_size, self.stride)

    def _diagonal(self):
        """The per-class kernels ``(C, 1, k, k)`` if no class feeds another, else ``None``;
        checked once per weight version."""
        weight = self.weight
        stamp = (weight.data_ptr(), weight._version, weight.device, weight.dtype)
        if getattr(self, '_diagonal_stamp', None) != stamp:
            index = torch.arange(self.channels, device=weight.device)
            diagonal = weight.detach()[index, index]
            off = weight.detach().abs().sum() - diagonal.abs().sum()
            self._diagonal_kernels = diagonal.unsqueeze(1).clone() if off == 0 else None
            self._diagonal_stamp = stamp
        return self._diagonal_kernels

    def _other_size(self, x: torch.Tensor, kernel_size: int) -> torch.Tensor:
        """Fixed bilinear upsampling with another kernel size (FCNSkipHead picks the parity
        that aligns the grids); the state dict keeps the configured kernel."""
        if self.weight.requires_grad:
            raise ValueError(
                f'BilinearUpsample: the grids need a {kernel_size}-pixel kernel here, but this '
                f'learnable upsampling trains its {self.kernel_size}-pixel one: set '
                'upsample_kernel_sizes in the head config')
        kernel = bilinear_kernel(kernel_size).to(x.device, x.dtype)
        weight = kernel.expand(self.channels, 1, kernel_size, kernel_size)
        return F.conv_transpose2d(x, weight, stride=self.stride, groups=self.channels)

    def forward(self, x: torch.Tensor, kernel_size: int = None) -> torch.Tensor:
        if kernel_size and kernel_size != self.kernel_size:
            return self._other_size(x, kernel_size)
        # In inference, a class-diagonal kernel (fixed bilinear upsampling) runs as a grouped
        # transposed convolution: the same sums without the zero terms, 2-6x faster on CPU.
        # Training keeps the full one (bit-identical to the reference's arithmetic), and so do
        # torch.export / torch.compile (ONNX export): the diagonal test reads the weight's values.
        if not torch.is_grad_enabled() and not is_compiling():
            diagonal = self._diagonal()
            if diagonal is not None:
                return F.conv_transpose2d(
                    x, diagonal.to(x.dtype), stride=self.stride, groups=self.channels)
        return F.conv_transpose2d(x, self.weight, stride=self.stride)

    def extra_repr(self) -> str:
        return (f'{self.channels}, stride={self.stride}, kernel_size={self.kernel_size}, '
                f'learnable={self.learnable}')
