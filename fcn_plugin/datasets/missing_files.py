"""The one missing-file check of a data list.

:func:`missing_files` lists the images and labels a dataset's list names that do not exist and
:func:`describe_missing` words them. Their users: :class:`~.voc.FCNVOCDataset` and
:class:`~.custom.CustomSegDataset` raise at build time (unless built with ``check_files=False``),
:class:`~.validated_dataset.ValidatedDataset` raises or drops the samples, and
``tools/check_dataset.py`` builds the dataset with ``check_files=False`` and lists every
missing file.
"""
import os.path as osp
from typing import Iterable, List, Sequence, Tuple

PATH_KEYS = ('img_path', 'seg_map_path')


def sample_paths(info: dict, keys: Sequence[str] = PATH_KEYS) -> List[str]:
    """The files (image, label) of one data-list entry, those that are set."""
    return [info[k] for k in keys if info.get(k)]


def missing_files(infos: Iterable[dict],
                  keys: Sequence[str] = PATH_KEYS) -> List[Tuple[int, str]]:
    """``(index, path)`` of every file named by ``infos`` (a data list, in order; ``keys``: which
    paths of each entry) that is not an existing file."""
    return [(i, path) for i, info in enumerate(infos) for path in sample_paths(info, keys)
            if not osp.isfile(path)]


def describe_missing(missing: Sequence[Tuple[int, str]], listed_by: str, shown: int = 5) -> str:
    """``'N file(s) listed by <listed_by> are missing: a; b; ...'`` (the first ``shown``)."""
    names = '; '.join(p for _, p in missing[:shown]) + ('; ...' if len(missing) > shown else '')
    return f'{len(missing)} file(s) listed by {listed_by} are missing: {names}'
