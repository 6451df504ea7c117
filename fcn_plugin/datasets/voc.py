"""Pascal VOC-layout datasets that fail early, with one clear message, on missing data."""
import os.path as osp
from typing import List, Optional

from mmseg.datasets import PascalVOCDataset
from mmseg.registry import DATASETS


@DATASETS.register_module()
class FCNVOCDataset(PascalVOCDataset):
    """:class:`PascalVOCDataset` (21 classes, 255 = void) that checks its files when built.

    The reference recipes read SBD train and seg11valid from one VOC-layout folder written by
    ``tools/dataset_converters/sbd.py``; the toy demo reads ``data/toy`` the same way. Before
    loading, the split file, the image folder and the label folder must exist, and afterwards
    every listed image and label; otherwise a single :class:`FileNotFoundError` names the first
    missing path, how many are missing, and ``prepare_cmd``, the command that prepares the data.

    Args:
        prepare_cmd: shown in the error, e.g. ``'python tools/dataset_converters/sbd.py ...'``.
        kwargs: those of :class:`PascalVOCDataset` (``data_root``, ``ann_file``,
            ``data_prefix``, ``pipeline``...).
    """

    def __init__(self, ann_file: str, prepare_cmd: Optional[str] = None, **kwargs) -> None:
        self.prepare_cmd = prepare_cmd
        super().__init__(ann_file=ann_file, **kwargs)

    def _missing(self, what: str, path: str, count: int = 1, total: int = 1) -> None:
        how = (f'Prepare it with: {self.prepare_cmd}' if self.prepare_cmd else
               'Check data_root, data_prefix and ann_file in the dataset config.')
        many = f' ({count} of {total} listed files are missing)' if count > 1 else ''
        raise FileNotFoundError(
            f'{type(self).__name__}: {what} not found: {path}{many} '
            f'(data_root={self.data_root!r}). {how}')

    def load_data_list(self) -> List[dict]:
        img_dir = self.data_prefix.get('img_path', '')
        seg_dir = self.data_prefix.get('seg_map_path', None)
        if not osp.isfile(self.ann_file):
            self._missing('split file (ann_file)', self.ann_file)
        if not osp.isdir(img_dir):
            self._missing('image folder', img_dir)
        if seg_dir is not None and not osp.isdir(seg_dir):
            self._missing('label folder', seg_dir)
        data_list = super().load_data_list()
        if not data_list:
            raise ValueError(f'{type(self).__name__}: the split file {self.ann_file} lists no '
                             'images')
        missing = [p for info in data_list
                   for p in (info['img_path'], info.get('seg_map_path')) if p and
                   not osp.isfile(p)]
        if missing:
            self._missing('image or label file', missing[0], len(missing), 2 * len(data_list))
        return data_list
