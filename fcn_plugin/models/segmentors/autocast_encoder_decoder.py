"""mmseg's ``EncoderDecoder`` with an inference precision and a memory format to choose."""
import contextlib
from typing import List

import torch
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS

from ...utils.checkpoint_fit import attach_checkpoint_fit

PRECISIONS = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


@MODELS.register_module()
class AutocastEncoderDecoder(EncoderDecoder):
    """:class:`EncoderDecoder` whose inference runs in a reduced precision and/or channels-last.

    Args:
        inference_precision: ``'fp32'`` (default: exact), ``'fp16'`` or ``'bf16'``: the
            network runs under :func:`torch.autocast` in ``predict`` and in tensor mode (so in
            ``tools/test.py``, ``mmseg.apis.inference_model``, ``MMSegInferencer``); the logits
            are returned in fp32. Training precision is the optimizer wrapper's business
            (``AmpOptimWrapper``, ``tools/train.py --amp``). On CPU, bf16 is the useful one.
        channels_last: store the 4-D weights and feed the inputs in channels-last order, in
            training and inference (faster convolutions with cuDNN / tensor cores; on the CPU the
            default fp32 fast path of the VGG backbone is faster and is then not taken).
        checkpoint_fit: how a checkpoint loaded into the model must fit it
            (:mod:`fcn_plugin.utils.checkpoint_fit`): ``'strict'`` (default: every key present
            with its shape, else one error naming the file and the keys; ``load_from`` in
            training relaxes it to ``'stage'``), ``'stage'`` (the new stage's score layers may be
            missing) or ``'off'`` (mmengine's warnings only; for your own partial loads).
        kwargs: everything :class:`EncoderDecoder` takes.

    Set them in a config (``model=dict(type='AutocastEncoderDecoder', inference_precision=
    'bf16')``), with ``--cfg-options model.inference_precision=bf16``, with the tools'
    ``--precision``/``--channels-last`` flags, or with ``init_model(..., cfg_options=...)``.
    """

    def __init__(self,
                 *args,
                 inference_precision: str = 'fp32',
                 channels_last: bool = False,
                 checkpoint_fit: str = 'strict',
                 **kwargs):
        super().__init__(*args, **kwargs)
        attach_checkpoint_fit(self, checkpoint_fit)
        if inference_precision not in PRECISIONS:
            raise ValueError(f'AutocastEncoderDecoder: inference_precision='
                             f'{inference_precision!r} is not one of {sorted(PRECISIONS)} '
                             '(config key model.inference_precision)')
        self.inference_precision = inference_precision
        self.channels_last = channels_last
        self._weights_channels_last = False

    def autocast(self, device_type: str):
        """The context inference runs in: ``torch.autocast`` in the chosen precision (none for
        fp32). ``tools/benchmark.py`` runs the plain module in it too."""
        dtype = PRECISIONS[self.inference_precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type, dtype=dtype)

    def extract_feat(self, inputs: torch.Tensor):
        if self.channels_last:
            if not self._weights_channels_last:
                self.to(memory_format=torch.channels_last)  # keeps the Parameter objects
                self._weights_channels_last = True
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return super().extract_feat(inputs)

    def inference(self, inputs: torch.Tensor, batch_img_metas: List[dict]) -> torch.Tensor:
        with self.autocast(inputs.device.type):
            seg_logits = super().inference(inputs, batch_img_metas)
        return seg_logits.float()

    def _forward(self, inputs: torch.Tensor, data_samples=None) -> torch.Tensor:
        with self.autocast(inputs.device.type):
            out = super()._forward(inputs, data_samples)
        return out.float()
