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
        inputs = data['inputs']
        if training or len({tuple(img.shape[-2:]) for img in inputs}) == 1:
            return super().forward(data, training)
        # A test batch of mixed sizes: the parent casts, converts and normalises each image,
        # alone and without its test-time padding (test_cfg); then they are padded together.
        test_cfg, self.test_cfg = self.test_cfg, None
        try:
            inputs = [
                super(PadSegDataPreProcessor, self).forward(dict(inputs=[img]))['inputs'][0]
                for img in inputs
            ]
        finally:
            self.test_cfg = test_cfg
        size = (test_cfg or {}).get('size')
        divisor = None if size else (test_cfg or {}).get('size_divisor', self.size_divisor)
        inputs, padding = stack_batch(
            inputs,
            size=size,
            size_divisor=divisor,
            pad_val=self.pad_val,
            seg_pad_val=self.seg_pad_val)
        data_samples = self.cast_data(data.get('data_samples'))
        for sample, pad_info in zip(data_samples or (), padding):
            sample.set_metainfo(pad_info)
        return dict(inputs=inputs, data_samples=data_samples)
