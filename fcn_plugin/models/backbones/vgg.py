"""VGG trunk with fc6/fc7 as convolutions: the backbone of the original FCN."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from ...utils.checkpoint_fit import attach_checkpoint_fit
from ...utils.torch_compat import autocast_enabled, is_compiling
from ..layers.coord_map import CoordMap
from ..layers.core_window import LayerShape, min_input_size
from ..layers.feature_maps import FeatureMaps
from .vgg_core_forward import ZeroImageMaps, core_forward


@MODELS.register_module()
class VGG(BaseModule):
    """VGG-11/13/16/19, "convolutionalized" as in Long, Shelhamer & Darrell (FCN).

    Five stages of 3x3 convolutions + ReLU, each closed by a 2x2/2 max pool that rounds its
    output size up (Caffe's pooling, ``ceil_mode=True``), then the classifier's fc6/fc7 as a 7x7
    and a 1x1 convolution, each followed by ReLU and element-wise dropout. Modules are named as
    in the reference (``conv1_1`` ... ``conv5_3``, ``fc6``, ``fc7``), so its state dict keys are
    the reference's.

    ``conv1_1`` is padded by 100 (``first_conv_padding``): the 7x7 fc6 has no padding, and the
    extra margin makes fc7 large enough that the upsampled scores can always be cropped back to
    the input, for any input size from 1 pixel up. A 500x500 input is 698x698 after conv1_1.

    Outputs are chosen by ``out_indices``: 0..4 are the pools (pool3 = 2 has stride 8, pool4 = 3
    stride 16, pool5 = 4 stride 32) and 5 is fc7 (stride 32). FCN-32s uses ``(5,)``, FCN-16s
    ``(3, 5)``, FCN-8s ``(2, 3, 5)``. The tuple returned is a :class:`FeatureMaps` that carries
    each output's :class:`CoordMap` (derived from the layers below) and the input size, from which
    :class:`FCNSkipHead` derives its crops.

    Shapes, for an ``(N, 3, H, W)`` input and the defaults: pool_k is ``(N, C_k, h_k, w_k)`` with
    ``C = (64, 128, 256, 512, 512)``, ``h_1 = ceil((H + 198) / 2)`` and ``h_k = ceil(h_{k-1} / 2)``;
    fc7 is ``(N, 4096, h_5 - 6, w_5 - 6)``.

    Args:
        depth: 11, 13, 16 (the paper's) or 19.
        in_channels: input channels.
        base_channels: width of stage 1; stages are 1, 2, 4, 8, 8 times it (64 = VGG).
        fc_channels: width of fc6 and fc7 (4096 = VGG).
        first_conv_padding: padding of conv1_1 (100 = reference; 1 = plain VGG).
        with_fc: build fc6/fc7 (needed for output index 5).
        fc6_kernel_size: 7 = VGG's classifier on a 7x7 pool5 grid.
        dropout_ratio: element-wise dropout after fc6 and fc7 (0.5 = reference).
        out_indices: which outputs to return, see above.
        frozen_stages: the first ``frozen_stages`` stages (fc6/fc7 count as the sixth) are put
            in eval mode with ``requires_grad=False``; -1 or 0 freezes nothing.
        fast_inference: in eval mode, compute only the cells that see the image and fill in the
            rest, with NNPACK convolutions on CPU (:mod:`.vgg_core_forward`): the same outputs to
            fp32 rounding (about 1e-5 relative), 2-3x faster on CPU. Training, autocast, tracing,
            torch.export / torch.compile and ONNX export always take the plain path; ``False``
            takes it in eval mode too.
        init_cfg: e.g. ``dict(type='Pretrained', checkpoint='vgg16_caffe.pth')``, a checkpoint
            made by ``tools/model_converters/vgg2mmseg.py``. A checkpoint loaded into the
            backbone itself must hold every backbone weight with its shape, else one error names
            the file and the keys (:mod:`fcn_plugin.utils.checkpoint_fit`, ``'backbone'``).

    Any image size works: with a conv1_1 padding too small for tiny images (the demo config's
    16 needs 35 pixels a side, ``min_input_size``), smaller images are extended with zeros at the
    bottom and right and the outputs still say the image's own size (``input_size``).
    """

    arch_settings: Dict[int, Tuple[int, ...]] = {
        11: (1, 1, 2, 2, 2),
        13: (2, 2, 2, 2, 2),
        16: (2, 2, 3, 3, 3),
        19: (2, 2, 4, 4, 4),
    }
    num_stages = 6  # five conv stages and the fc stage

    def __init__(self,
                 depth: int = 16,
                 in_channels: int = 3,
                 base_channels: int = 64,
                 fc_channels: int = 4096,
                 first_conv_padding: int = 100,
                 with_fc: bool = True,
                 fc6_kernel_size: int = 7,
                 dropout_ratio: float = 0.5,
                 out_indices: Sequence[int] = (2, 3, 5),
                 frozen_stages: int = -1,
                 fast_inference: bool = True,
                 init_cfg: Union[dict, List[dict], None] = None):
        super().__init__(init_cfg=init_cfg)
        if depth not in self.arch_settings:
            raise KeyError(f'VGG: depth={depth} is not one of {sorted(self.arch_settings)}')
        out_indices = tuple(out_indices)
        last = self.num_stages - 1 if with_fc else self.num_stages - 2
        if not out_indices or any(not 0 <= i <= last for i in out_indices) or \
                list(out_indices) != sorted(set(out_indices)):
            raise ValueError(f'VGG: out_indices={out_indices} must be increasing indices in '
                             f'0..{last} (0-4 = pool1-pool5, 5 = fc7 when with_fc=True)')
        self.depth = depth
        self.out_indices = out_indices
        self.with_fc = with_fc
        self.frozen_stages = frozen_stages
        self.fast_inference = fast_inference
        self._zero_image_maps = ZeroImageMaps()

        # stage_modules[i]: names of stage i's layers, in order; used by forward and freezing.
        self.stage_modules: List[List[str]] = []
        channels = in_channels
        for stage, num_convs in enumerate(self.arch_settings[depth], start=1):
            out_channels = base_channels * min(2**(stage - 1), 8)
            names = []
            for i in range(1, num_convs + 1):
                padding = first_conv_padding if (stage, i) == (1, 1) else 1
                name = f'conv{stage}_{i}'
                self.add_module(name, nn.Conv2d(channels, out_channels, 3, padding=padding))
                names.append(name)
                channels = out_channels
            self.add_module(f'pool{stage}', nn.MaxPool2d(2, stride=2, ceil_mode=True))
            self.stage_modules.append(names + [f'pool{stage}'])
        if with_fc:
            self.fc6 = nn.Conv2d(channels, fc_channels, fc6_kernel_size)
            self.drop6 = nn.Dropout(dropout_ratio)
            self.fc7 = nn.Conv2d(fc_channels, fc_channels, 1)
            self.drop7 = nn.Dropout(dropout_ratio)
            self.stage_modules.append(['fc6', 'drop6', 'fc7', 'drop7'])
        self.out_channels = tuple(self._stage_out_channels()[i] for i in out_indices)
        self.coord_maps = tuple(self._stage_coord_maps()[i] for i in out_indices)
        self.min_input_size = min_input_size([LayerShape.of(m) for m in self._trunk()[0]])
        self._freeze_stages()
        attach_checkpoint_fit(self, 'backbone')  # only when the backbone is the module loaded

    def _stage_out_channels(self) -> List[int]:
        channels = []
        for names in self.stage_modules:
            convs = [getattr(self, n) for n in names if isinstance(getattr(self, n), nn.Conv2d)]
            channels.append(convs[-1].out_channels)
        return channels

    def _stage_coord_maps(self) -> List[CoordMap]:
        """Each stage output's map to input pixels, followed through the actual layers."""
        cmap, maps = CoordMap.of(1, 0), []
        for names in self.stage_modules:
            cmap = cmap.through(getattr(self, n) for n in names)
            maps.append(cmap)
        return maps

    def _freeze_stages(self) -> None:
        for names in self.stage_modules[:max(self.frozen_stages, 0)]:
            for name in names:
                module = getattr(self, name)
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def _use_core_forward(self, x: torch.Tensor) -> bool:
        if self.training or not self.fast_inference or x.device.type != 'cpu' or \
                not x.is_contiguous():  # channels-last runs take the plain path
            return False
        tracing = torch.jit.is_tracing() or torch.jit.is_scripting() or \
            torch.onnx.is_in_onnx_export() or is_compiling()  # incl. torch.export
        return not tracing and not autocast_enabled('cpu')

    def _trunk(self) -> Tuple[List[nn.Module], List[int]]:
        """The conv/pool layers up to the last output, and the indices of the outputs."""
        layers, keep = [], []
        for index, names in enumerate(self.stage_modules):
            layers += [
                getattr(self, n) for n in names
                if isinstance(getattr(self, n), (nn.Conv2d, nn.MaxPool2d))
            ]
            if index in self.out_indices:
                keep.append(len(layers) - 1)
            if index == self.out_indices[-1]:
                break
        return layers, keep

    def _core_forward(self, x: torch.Tensor) -> Optional[List[torch.Tensor]]:
        return core_forward(*self._trunk(), x, self._zero_image_maps)

    def forward(self, x: torch.Tensor) -> FeatureMaps:
        input_size = x.shape[-2:]
        short = [max(self.min_input_size - s, 0) for s in input_size] if isinstance(
            input_size[0], int) else [0, 0]  # symbolic sizes (export): the graph has a minimum
        if any(short):
            # smaller than the stack can take (only with a small conv1_1 padding): extend the
            # image at the bottom and right with zeros, as conv1_1's own padding does; the head
            # crops the logits back to the image (input_size)
            x = F.pad(x, (0, short[1], 0, short[0]))
        if self._use_core_forward(x):
            outs = self._core_forward(x)
            if outs is not None:
                return FeatureMaps(outs, coord_maps=self.coord_maps, input_size=input_size)
        outs = []
        for index, names in enumerate(self.stage_modules):
            for name in names:
                layer = getattr(self, name)
                x = layer(x)
                if isinstance(layer, nn.Conv2d):
                    x = F.relu(x, inplace=True)
            if index in self.out_indices:
                outs.append(x)
                if index == self.out_indices[-1]:
                    break  # nothing later is returned
        return FeatureMaps(outs, coord_maps=self.coord_maps, input_size=input_size)

    def train(self, mode: bool = True) -> 'VGG':
        super().train(mode)
        self._freeze_stages()
        return self
