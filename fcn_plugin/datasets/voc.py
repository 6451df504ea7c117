"""Pascal VOC-layout datasets that fail early, with one clear message, on missing data."""
import os.path as osp
from typing import List, Sequence, Union

from mmseg.datasets import PascalVOCDataset
from mmseg.registry import DATASETS

from .missing_files import (NoSamplesError, command_text, describe_missing, missing_files,
                            prepare_hint)
from .transforms import FilesCheckedFirst


@DATASETS.register_module()
class FCNVOCDataset(FilesCheckedFirst, PascalVOCDataset):
    """:class:`PascalVOCDataset` (21 classes, 255 = void) that checks its files when built.

    The reference recipes read SBD train and seg11valid from one VOC-layout folder written by
    ``tools/dataset_converters/sbd.py``; the toy demo reads ``data/toy`` the same way. Before
    loading, the split file, the image folder and the label folder must exist, and afterwards
    every listed image and label; otherwise a single :class:`FileNotFoundError` names the
    missing folder or files (:func:`~.missing_files.describe_missing`), and ``prepare_cmd``,
    the command that prepares the data. A split file that lists no name (empty, or blank lines
    only; blank lines are skipped) is :class:`~.missing_files.NoSamplesError`, a
    ``FileNotFoundError``.

    Args:
        prepare_cmd: shown in the error, e.g. ``'python tools/dataset_converters/sbd.py ...'``
            (a list of parts is joined by spaces).
        check_files: ``False`` loads a list that names missing files (the folders and the split
            file must still exist); ``tools/check_dataset.py`` sets it on a lazily built
            dataset, before ``full_init``, to list them all with
            :func:`~.missing_files.missing_files`.
        kwargs: those of :class:`PascalVOCDataset` (``data_root``, ``ann_file``,
            ``data_prefix``, ``pipeline``...).
    """

    def __init__(self,
                 ann_file: str,
                 prepare_cmd: Union[str, Sequence[str], None] = None,
                 check_files: bool = True,
                 **kwargs) -> None:
        self.prepare_cmd = command_text(prepare_cmd)
        self.check_files = check_files
        super().__init__(ann_file=ann_file, **kwargs)

    def _fail(self, message: str, error: type = FileNotFoundError) -> None:
        command = prepare_hint(self.prepare_cmd, self.data_root)
        how = (f'Prepare it with: {command}'
               if command else 'Check data_root, data_prefix and ann_file in the dataset config.')
        raise error(f'{type(self).__name__}: {message} (data_root={self.data_root!r}). {how}')

    def load_data_list(self) -> List[dict]:
        img_dir = self.data_prefix.get('img_path', '')
        seg_dir = self.data_prefix.get('seg_map_path', None)
        if not osp.isfile(self.ann_file):
            self._fail(f'split file (ann_file) not found: {self.ann_file}')
        if not osp.isdir(img_dir):
            self._fail(f'image folder not found: {img_dir}')
        if seg_dir is not None and not osp.isdir(seg_dir):
            self._fail(f'label folder not found: {seg_dir}')
        blank = osp.join(img_dir, self.img_suffix)  # the entry of a blank line
        data_list = [d for d in super().load_data_list() if d['img_path'] != blank]
        if not data_list:
            self._fail(f'the split file {self.ann_file} lists no images (it is empty)',
                       NoSamplesError)
        missing = missing_files(data_list) if self.check_files else []
        if missing:
            self._fail(describe_missing(missing, self.ann_file))
        return data_list
