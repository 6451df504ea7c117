"""Your own data: images and index-label PNGs in folders, any suffixes, with clear errors."""
import os.path as osp
from typing import List, Sequence, Union

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .missing_files import NoSamplesError, command_text, missing_files, prepare_hint, with_problem
from .transforms import FilesCheckedFirst


@DATASETS.register_module()
class CustomSegDataset(FilesCheckedFirst, BaseSegDataset):
    """mmseg's :class:`BaseSegDataset` (images + label maps, ``img_suffix``/``seg_map_suffix``,
    ``metainfo=dict(classes=..., palette=...)``, optional split file) that checks its files
    when built.

    Layout (any folder names, set in ``data_prefix``)::

        data_root/img_path/<name><img_suffix>          e.g. images/train/0001.jpg
        data_root/seg_map_path/<name><seg_map_suffix>  e.g. labels/train/0001.png

    A label is a single-channel image holding one class index per pixel, ``0..K-1``, and
    ``ignore_index`` (255) for void; ``tools/dataset_converters/masks2labels.py`` converts
    0/255, grey-level and colour masks to that. Without ``ann_file`` every image under
    ``img_path`` (recursively) with ``img_suffix`` is a sample; with it, the names listed
    (one a line, without suffix).

    A ``CheckSegSample`` in the pipeline without ``num_classes`` gets ``len(classes)`` and the
    dataset's ``ignore_index``.

    Before loading: the image folder, the label folder and the split file must exist; after: at
    least one image (:class:`~.missing_files.NoSamplesError` if none: an empty split file, or no
    image with ``img_suffix``; blank lines of a split file are skipped), and a label for every
    image. Otherwise one :class:`FileNotFoundError` names the folder or the first missing files,
    the suffixes and ``prepare_cmd``.
    ``check_files=False`` loads a list that names missing files (as :class:`~.voc.FCNVOCDataset`;
    ``tools/check_dataset.py`` lists them all).
    """

    def __init__(self,
                 prepare_cmd: Union[str, Sequence[str], None] = None,
                 check_files: bool = True,
                 **kwargs) -> None:
        self.prepare_cmd = command_text(prepare_cmd)
        self.check_files = check_files
        super().__init__(**kwargs)

    def _fail(self, message: str, error: type = FileNotFoundError) -> None:
        command = prepare_hint(self.prepare_cmd, self.data_root)
        how = (f' Prepare it with: {command}' if command else
               ' Check data_root, data_prefix, img_suffix, seg_map_suffix and ann_file in the '
               'dataset config.')
        raise error(f'{type(self).__name__}: {message} (data_root={self.data_root!r}).{how}')

    def load_data_list(self) -> List[dict]:
        img_dir = self.data_prefix.get('img_path', '')
        seg_dir = self.data_prefix.get('seg_map_path', None)
        if not osp.isdir(img_dir):
            self._fail(f'image folder not found: {img_dir}')
        if seg_dir is not None and not osp.isdir(seg_dir):
            self._fail(f'label folder not found: {seg_dir}')
        if self.ann_file and not osp.isfile(self.ann_file):
            self._fail(f'split file (ann_file) not found: {self.ann_file}')
        data_list = super().load_data_list()
        if self.ann_file:  # a blank line of the split file is no sample
            blank = osp.join(img_dir, self.img_suffix)
            data_list = [d for d in data_list if d['img_path'] != blank]
        if not data_list:
            where = (f'the split file {self.ann_file} lists no images (it is empty)'
                     if self.ann_file else
                     f'no image ending with img_suffix={self.img_suffix!r} in {img_dir}')
            self._fail(where, NoSamplesError)
        if not self.check_files:
            return data_list
        missing = missing_files(data_list, ['img_path'])  # none unless ann_file lists them
        if missing:
            self._fail(f'{len(missing)} of {len(data_list)} images listed by '
                       f'{self.ann_file} not found (img_suffix={self.img_suffix!r}), e.g. '
                       f'{with_problem(missing[0][1])}')
        missing = missing_files(data_list, ['seg_map_path'])
        if missing:
            self._fail(f'{len(missing)} of {len(data_list)} images have no label ending with '
                       f'seg_map_suffix={self.seg_map_suffix!r} in {seg_dir}, e.g. '
                       f'{with_problem(missing[0][1])} (for '
                       f'{data_list[missing[0][0]]["img_path"]} and the like)')
        return data_list
