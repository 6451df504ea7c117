"""A segmentation data preprocessor that batches images of different sizes, also for testing."""
from typing import Any, Dict

from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS
from mmseg.utils import stack_batch


@MODELS.register_module()
class PadSegDataPreProcessor(SegDataPreProcessor):
    """:class:`SegDataPreProcessor` that pads a batch to its largest image, in training and test.

    FCN takes full images of any size (the reference trains and tests with batch 1, no resize).
    mmseg's preprocessor needs ``size`` or ``size_divisor`` to batch training images and refuses
    test batches whose images differ in size. Here ``size_divisor`` defaults to 1 (pad to the
    largest image, no rounding), and test batches of mixed sizes are padded the same way; the
    segmentor then removes each image's padding from the logits (``img_padding_size``). Labels
    are padded with ``seg_pad_val`` (255, ignored), images with ``pad_val`` after normalisation.
    """

    def __init__(self, *args, size_divisor: int = 1, **kwargs):
        super().__init__(*args, size_divisor=size_divisor, **kwargs)

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        sizes = {tuple(img.shape[-2:]) for img in data['inputs']}
        if training or len(sizes) == 1:
            return super().forward(data, training)
        data = self.cast_data(data)
        inputs, data_samples = data['inputs'], data.get('data_samples')
        if self.channel_conversion and inputs[0].size(0) == 3:
            inputs = [img[[2, 1, 0], ...] for img in inputs]
        inputs = [img.float() for img in inputs]
        if self._enable_normalize:
            inputs = [(img - self.mean) / self.std for img in inputs]
        size = (self.test_cfg or {}).get('size')
        divisor = None if size else (self.test_cfg or {}).get('size_divisor', self.size_divisor)
        inputs, padding = stack_batch(inputs, size=size, size_divisor=divisor,
                                      pad_val=self.pad_val, seg_pad_val=self.seg_pad_val)
        if data_samples is not None:
            for sample, pad_info in zip(data_samples, padding):
                sample.set_metainfo(pad_info)
        return dict(inputs=inputs, data_samples=data_samples)
