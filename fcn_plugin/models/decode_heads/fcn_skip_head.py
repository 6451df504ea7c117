"""The FCN-32s/16s/8s decode head: score, fuse skips coarse to fine, upsample, crop."""
import warnings
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS

from ..layers.bilinear_upsample import BilinearUpsample
from ..layers.coord_map import CoordMap
from ..layers.crop import crop_to_input, input_crop_start, window_start
from ..layers.skip_fusion import SkipFusion
from ..layers.upsampling_plan import UpsamplingPlan, plan_upsampling


@MODELS.register_module()
class FCNSkipHead(BaseDecodeHead):
    """Fully convolutional head with skip fusion (Long, Shelhamer & Darrell).

    The number of inputs sets the variant: one (fc7) is FCN-32s, two (pool4, fc7) FCN-16s, three
    (pool3, pool4, fc7) FCN-8s; inputs are ordered fine to coarse, as backbones return them.

    1. ``conv_seg`` (the reference's ``score_fr``) scores the coarsest map with a 1x1 conv.
    2. Each :class:`SkipFusion` in ``fusions`` (coarse to fine) upsamples the scores x2, scores
       the next finer map, crops both to their common window and adds them.
    3. ``upsample`` brings the fused scores to stride 1 (x32/x16/x8) and the result is cropped to
       exactly the input: the logits are ``(N, num_classes, H, W)`` for every input size.

    All crops are derived from coord maps (:class:`CoordMap`): from those the backbone attached
    to its :class:`FeatureMaps` output (the VGG backbone does; on the reference trunk the crops
    come out as 19; 5, 27; 5, 9, 31), else from ``in_coord_maps``, else from the assumption
    that input ``i`` is centred, ``x_image = in_strides[i] * x`` (ResNet and most backbones with
    "same" padding; with the default kernels the head lines them up by itself, see below).

    Score layers start at zero; the upsampling starts bilinear and is fixed (a buffer, as in the
    reference) unless ``learnable_upsample=True``. No dropout here (``dropout_ratio=0``): the
    reference's dropout is in fc6/fc7 of the backbone.

    Args:
        in_channels: channels of the selected inputs, fine to coarse, e.g. (256, 512, 4096).
        in_index: which backbone outputs to use, fine to coarse.
        num_classes: 21 on VOC; 2 for binary segmentation (softmax over two classes).
        skip_scales: factors on the skip features before scoring, fine to coarse skips excluding
            the coarsest: ``(1e-4, 0.01)`` for FCN-8s at-once; ``None`` is all 1.
        in_strides: the inputs' strides; by default ``(..., 8, 16, 32)``, the FCN layout.
        in_coord_maps: ``(stride, offset)`` per input, used when the features carry no maps.
        upsample_kernel_sizes: kernel of each upsampling, coarse to fine then the final one.
            ``None`` (default): the paper's ``2 * factor`` where it aligns the grids (the
            reference VGG), else ``2 * factor - 1`` (centred maps: ResNet, MiT, MobileNetV2...),
            chosen per upsampling from the maps at hand (:mod:`..layers.upsampling_plan`); a
            grid off by a fraction of a cell nobody declared is aligned to the nearest cell with a
            warning. Given explicitly, they are used as they are and a misalignment is an error.
        learnable_upsample: learn the upsampling (the reference keeps it fixed).
        channels: input channels of ``conv_seg``; defaults to ``in_channels[-1]``.
        kwargs: the rest of :class:`BaseDecodeHead` (loss_decode, sampler, ignore_index...).
    """

    def __init__(self,
                 in_channels: Sequence[int] = (256, 512, 4096),
                 in_index: Sequence[int] = (0, 1, 2),
                 num_classes: int = 21,
                 skip_scales: Optional[Sequence[float]] = None,
                 in_strides: Optional[Sequence[int]] = None,
                 in_coord_maps: Optional[Sequence[Sequence[float]]] = None,
                 upsample_kernel_sizes: Optional[Sequence[int]] = None,
                 learnable_upsample: bool = False,
                 channels: Optional[int] = None,
                 dropout_ratio: float = 0.0,
                 init_cfg=None,
                 **kwargs):
        in_channels, in_index = tuple(in_channels), tuple(in_index)
        if len(in_channels) != len(in_index) or not in_channels:
            raise ValueError(f'FCNSkipHead: in_channels={in_channels} and in_index={in_index} '
                             'must be non-empty and of the same length')
        num_levels = len(in_channels)
        with warnings.catch_warnings():
            # Binary segmentation is num_classes=2 here: two score channels and a softmax, as in
            # the FCN paper; mmseg's suggestion of out_channels=1 (sigmoid) does not apply.
            warnings.filterwarnings(
                'ignore', message='For binary segmentation, we suggest', category=UserWarning)
            super().__init__(
                in_channels=list(in_channels),
                channels=channels or in_channels[-1],
                num_classes=num_classes,
                in_index=list(in_index),
                input_transform='multiple_select',
                dropout_ratio=dropout_ratio,
                init_cfg=init_cfg,
                **kwargs)
        self.in_strides = tuple(in_strides or (32 // 2**i for i in reversed(range(num_levels))))
        if len(self.in_strides) != num_levels:
            raise ValueError(f'FCNSkipHead: in_strides={self.in_strides} needs {num_levels} '
                             'values, one per input')
        if in_coord_maps is not None and len(in_coord_maps) != num_levels:
            raise ValueError(f'FCNSkipHead: in_coord_maps needs {num_levels} (stride, offset)')
        self.in_coord_maps = tuple(CoordMap.of(*m)
                                   for m in in_coord_maps) if in_coord_maps is not None else tuple(
                                       CoordMap.of(s) for s in self.in_strides)
        skip_scales = tuple(skip_scales) if skip_scales is not None else (1.0, ) * (num_levels - 1)
        if len(skip_scales) != num_levels - 1:
            raise ValueError(f'FCNSkipHead: skip_scales={skip_scales} needs {num_levels - 1} '
                             'values, one per skip (fine to coarse)')
        # factors[j]: upsampling of fusion j (coarse to fine), then the final upsampling.
        strides = self.in_strides
        factors = [strides[i] // strides[i - 1] for i in range(num_levels - 1, 0, -1)]
        factors.append(strides[0])
        if any(f < 1 for f in factors) or any(strides[i] % strides[i - 1]
                                              for i in range(1, num_levels)):
            raise ValueError(f'FCNSkipHead: in_strides={strides} must increase by whole factors')
        self.auto_kernels = upsample_kernel_sizes is None
        kernels = tuple(upsample_kernel_sizes or (2 * f for f in factors))
        if len(kernels) != num_levels:
            raise ValueError(f'FCNSkipHead: upsample_kernel_sizes={kernels} needs {num_levels} '
                             'values (each skip, coarse to fine, then the final upsampling)')

        self.fusions = nn.ModuleList(
            SkipFusion(
                in_channels[i],
                num_classes,
                stride=factors[j],
                skip_scale=skip_scales[i],
                upsample_kernel_size=kernels[j],
                learnable_upsample=learnable_upsample)
            for j, i in enumerate(range(num_levels - 2, -1, -1)))
        self.upsample = BilinearUpsample(num_classes, factors[-1], kernels[-1], learnable_upsample)
        self._zero_score()

    def _zero_score(self) -> None:
        nn.init.zeros_(self.conv_seg.weight)
        nn.init.zeros_(self.conv_seg.bias)

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:
            self._zero_score()
            self.upsample.reset_bilinear()

    def _coord_maps(self, inputs) -> Tuple[CoordMap, ...]:
        maps = getattr(inputs, 'coord_maps', None)
        if maps is None:
            return self.in_coord_maps
        return tuple(maps[i] for i in self.in_index)

    def _plan(self, maps: Sequence[CoordMap]) -> UpsamplingPlan:
        upsamplers = [f.upsample for f in self.fusions] + [self.upsample]
        return plan_upsampling(maps, upsamplers, self.auto_kernels, type(self).__name__)

    def crop_offsets(self, coord_maps: Optional[Sequence[CoordMap]] = None) -> List[int]:
        """The reference's crop offsets (each skip's, then the final one) for these maps.

        These are where the skip scores (or, for other geometries, the upsampled scores) start
        in the larger blob; ``[19]``, ``[5, 27]`` and ``[5, 9, 31]`` on the reference trunk.
        The steps of :meth:`forward` without the tensors: its plan, each fusion's upsampled map
        and :func:`window_start` (where :func:`common_window` starts its crops), then
        :func:`input_crop_start` (where :func:`crop_to_input` starts).
        """
        maps = tuple(coord_maps or self.in_coord_maps)
        plan = self._plan(maps)
        cmap, offsets = maps[-1], []
        for fusion, fine_map, kernel in zip(self.fusions, plan.fine_maps, plan.kernels):
            start_up, start_fine, cmap = window_start(
                fusion.upsample.coord_map_through(cmap, kernel), fine_map)
            offsets.append(start_up + start_fine)  # one of the two starts is 0
        offsets.append(input_crop_start(CoordMap(1, plan.final_offset)))
        return offsets

    def forward(self, inputs, input_size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """``inputs``: the backbone's tuple; returns logits ``(N, num_classes, H, W)``.

        ``input_size`` (H, W) defaults to the size the backbone attached to its output. Where
        neither says it (mmseg's tensor mode on e.g. ResNet; ``loss``/``predict`` take it from
        the batch), the logits start at image pixel 0 and may extend past the input.
        """
        maps = self._coord_maps(inputs)
        plan = self._plan(maps)
        input_size = input_size or getattr(inputs, 'input_size', None)
        feats = self._transform_inputs(inputs)
        scores, cmap = self.cls_seg(feats[-1]), maps[-1]
        for fusion, feat, fine_map, kernel in zip(self.fusions, reversed(feats[:-1]),
                                                  plan.fine_maps, plan.kernels):
            scores, cmap = fusion(scores, feat, cmap, fine_map, kernel)
        return crop_to_input(
            self.upsample(scores, plan.kernels[-1]), CoordMap(1, plan.final_offset), input_size)

    def loss(self, inputs, batch_data_samples, train_cfg) -> dict:
        """The input size is the padded labels' (the batch's) unless the backbone gave it."""
        size = getattr(inputs, 'input_size', None) or batch_data_samples[0].gt_sem_seg.shape
        return self.loss_by_feat(self.forward(inputs, size), batch_data_samples)

    def predict(self, inputs, batch_img_metas: List[dict], test_cfg) -> torch.Tensor:
        """As mmseg's heads: the crop's size in slide inference, else the padded batch's."""
        size = getattr(inputs, 'input_size', None)
        if size is None:
            meta = batch_img_metas[0]
            slide = isinstance(meta['img_shape'], torch.Size)  # set by slide_inference
            size = meta['img_shape'] if slide else meta.get('pad_shape', meta['img_shape'])
        return self.predict_by_feat(self.forward(inputs, tuple(size[:2])), batch_img_metas)

    def predict_by_feat(self, seg_logits: torch.Tensor, batch_img_metas: List[dict]):
        """The logits already have the input's size: no resize (the base class would resize)."""
        return seg_logits
