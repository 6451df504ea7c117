"""Write the toy data of the offline demo (``tools/dataset_converters/make_toy_voc.py``): a small
deterministic segmentation dataset in Pascal VOC layout, or a binary one with 0/255 masks
(the generator: :mod:`fcn_plugin.datasets.toy_data`)."""
from dataclasses import dataclass
from typing import List, Optional, Tuple

from ..datasets.toy_data import make_toy_binary, make_toy_voc
from ..datasets.toy_voc import TOY_CLASSES

DEFAULT_DIRS = dict(voc='data/toy', binary='data/toy_binary')


@dataclass
class ToyData:
    """What :func:`make_toy_data` wrote: the folder, the ids of each split, the kind."""
    out_dir: str
    train: List[str]
    val: List[str]
    binary: bool = False

    def summary(self) -> str:
        if self.binary:
            return (f'toy binary dataset: {len(self.train)} train + {len(self.val)} val images '
                    f'with 0/255 masks, in {self.out_dir}; convert the masks to labels with\n'
                    f'  python tools/dataset_converters/masks2labels.py {self.out_dir}/masks '
                    f'{self.out_dir}/labels')
        return (f'toy VOC dataset: {len(self.train)} train + {len(self.val)} val images, '
                f'classes {TOY_CLASSES}, in {self.out_dir}')


def make_toy_data(out_dir: Optional[str] = None,
                  num_train: int = 96,
                  num_val: int = 32,
                  seed: int = 0,
                  size: Optional[Tuple[int, int]] = None,
                  binary: bool = False,
                  sbd_layout: bool = False) -> ToyData:
    """Write the toy dataset under ``out_dir`` (default ``data/toy``, ``binary``:
    ``data/toy_binary``): :func:`~fcn_plugin.datasets.toy_data.make_toy_voc` (``sbd_layout``:
    the reference recipe's file names), or with ``binary``
    :func:`~fcn_plugin.datasets.toy_data.make_toy_binary` (``sbd_layout`` does not apply).
    ``size=(H, W)``: every image that size (default: 64..96 px a side)."""
    out_dir = out_dir or DEFAULT_DIRS['binary' if binary else 'voc']
    size = tuple(size) if size is not None else None
    if binary:
        splits = make_toy_binary(out_dir, num_train, num_val, seed, size)
    else:
        splits = make_toy_voc(out_dir, num_train, num_val, seed, size, sbd_layout)
    return ToyData(out_dir, splits['train'], splits['val'], binary)
