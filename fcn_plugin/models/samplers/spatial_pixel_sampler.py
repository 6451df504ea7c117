"""Spatial sampling of the loss: the FCN paper's stand-in for patchwise training."""
import math

import torch
from mmseg.registry import TASK_UTILS
from mmseg.structures.sampler import BasePixelSampler


@TASK_UTILS.register_module()
class SpatialPixelSampler(BasePixelSampler):
    """Keep each final-layer cell in the loss with probability ``keep_prob``.

    Long, Shelhamer & Darrell (sec. 4.4) note that patchwise training is loss sampling in a
    fully convolutional net: dropping each cell of the final (stride 32) layer from the loss
    with probability ``1 - p`` is like training on a random subset of patches. They found it
    did not converge faster in wall time, so the reference recipes leave it off. Enable it with
    ``decode_head=dict(sampler=dict(type='SpatialPixelSampler', keep_prob=0.5))``.

    A cell is a ``cell_size`` x ``cell_size`` block of output pixels, on a grid anchored at the
    input's top-left corner (32 = the stride of fc7/score_fr). Each image draws its own mask.
    Dropped pixels get weight 0; kept ones weight 1 (the loss is not rescaled, as in the paper;
    the summed loss then shrinks by about ``keep_prob``); ignored pixels get 0.

    Args:
        context: the decode head (gives ``ignore_index``); passed by :class:`BaseDecodeHead`.
        keep_prob: probability ``p`` of keeping a cell, in (0, 1].
        cell_size: side of a cell in output pixels.
    """

    def __init__(self, context, keep_prob: float = 0.5, cell_size: int = 32):
        super().__init__()
        if not 0 < keep_prob <= 1:
            raise ValueError(f'SpatialPixelSampler: keep_prob={keep_prob} must be in (0, 1]')
        if cell_size < 1:
            raise ValueError(f'SpatialPixelSampler: cell_size={cell_size} must be >= 1')
        self.context = context
        self.keep_prob = float(keep_prob)
        self.cell_size = int(cell_size)

    def sample(self, seg_logit: torch.Tensor, seg_label: torch.Tensor) -> torch.Tensor:
        """Weights ``(N, H, W)`` for logits ``(N, C, H, W)`` and labels ``(N, 1, H, W)``."""
        with torch.no_grad():
            assert seg_logit.shape[2:] == seg_label.shape[2:]
            assert seg_label.shape[1] == 1
            label = seg_label.squeeze(1)
            n, h, w = label.shape
            s = self.cell_size
            cells = torch.rand((n, math.ceil(h / s), math.ceil(w / s)),
                               device=seg_logit.device) < self.keep_prob
            keep = cells.repeat_interleave(s, 1).repeat_interleave(s, 2)[:, :h, :w]
            valid = label != self.context.ignore_index
            return (keep & valid).to(seg_logit.dtype)
