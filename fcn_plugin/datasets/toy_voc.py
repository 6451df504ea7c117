"""The toy dataset of the offline demo (``tools/dataset_converters/make_toy_voc.py``)."""
from mmseg.registry import DATASETS

from ..utils.label_png import voc_palette
from .voc import FCNVOCDataset

# Class i is label value i: the generator (fcn_plugin/datasets/toy_data.py) imports these names.
TOY_CLASSES = ('background', 'disc', 'square', 'triangle', 'ring', 'stripes')


@DATASETS.register_module()
class ToyVOCDataset(FCNVOCDataset):
    """``data/toy``: VOC layout, background plus five shape classes, 255 = void borders.

    Colours are the first six of the VOC palette, as in the label PNGs the generator writes.
    """

    METAINFO = dict(classes=TOY_CLASSES, palette=voc_palette()[:len(TOY_CLASSES)].tolist())

    def __init__(
            self,
            ann_file: str,
            prepare_cmd: str = 'python tools/dataset_converters/make_toy_voc.py --out-dir data/toy',
            **kwargs) -> None:
        super().__init__(ann_file=ann_file, prepare_cmd=prepare_cmd, **kwargs)
