"""Load and check many samples of a dataset, in worker processes: what ``tools/check_dataset.py``
runs over every sample, and ``ValidatedDataset(precheck='full')`` at build time."""
import contextlib
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Tuple

import numpy as np

from .label_checks import COLOUR, value_counts
from .transforms import EXIF_KEY, BadSampleError

if TYPE_CHECKING:  # the wrapper imports this module
    from .validated_dataset import ValidatedDataset


def _scan_one(
        wrapper: 'ValidatedDataset',
        index: int) -> Tuple[Optional[BadSampleError], Optional[Dict[int, int]], Optional[dict]]:
    """Load sample ``index`` and check it: ``(error or None, label value counts or None, EXIF
    orientations of its files or None)``, the orientations as ``{key: (path, orientation)}``.
    The counts are taken before :class:`CheckSegSample`, so labels with bad values count
    too."""
    transforms = wrapper.dataset.pipeline.transforms
    counts = tags = None
    try:
        results = wrapper.load_and_check(index, transforms[:wrapper.check_index])
        if isinstance(results, dict) and results.get(EXIF_KEY) is not None:
            tags = {key: (results.get(key), o) for key, o in results[EXIF_KEY].items()}
        label = results.get('gt_seg_map') if isinstance(results, dict) else None
        if label is not None and np.ndim(label) == 2:
            counts = value_counts(label)
        elif label is not None:
            counts = {COLOUR: 1}
        if results is not None:
            wrapper.load_and_check(index, transforms[wrapper.check_index:wrapper.check_index + 1],
                                   results)
    except BadSampleError as error:
        return error, counts, tags
    return None, counts, tags


# The dataset of a pool worker, given by the pool's initializer: inherited through fork, so
# that the dataset need not be picklable and is not sent with each task.
_worker_dataset: Optional['ValidatedDataset'] = None


def _init_worker(wrapper: 'ValidatedDataset') -> None:
    global _worker_dataset
    _worker_dataset = wrapper


def _scan_in_worker(index: int):
    return (index, ) + _scan_one(_worker_dataset, index)


def scan_dataset(
        wrapper: 'ValidatedDataset',
        indices: Optional[Iterable[int]] = None,
        workers: int = 0,
        progress: bool = True,
        desc: str = 'checking',
        label_counts: Optional[Dict[str, Dict[int, int]]] = None,
        exif_tags: Optional[Dict[str, Dict[str, Optional[int]]]] = None) -> List[BadSampleError]:
    """Load and check samples (only the loading transforms and the checks, no augmentation);
    return one :class:`BadSampleError` per bad sample, in dataset order.

    ``wrapper`` is a :class:`~.validated_dataset.ValidatedDataset`; ``indices`` index the
    dataset it wraps (default: all). ``workers > 1`` checks in that many processes (forked).
    ``label_counts``, if given, is filled with ``{label path: {value: pixel count}}`` of every
    label loaded (for :func:`~.label_checks.analyze_labels`); ``exif_tags``, if given, with
    ``{'img_path': {image: orientation}, 'seg_map_path': {label: orientation}}`` of every file
    whose header was read (orientation ``None``: no EXIF orientation tag; for
    :func:`~.label_checks.orientation_findings`).
    """
    wrapper.dataset.full_init()
    indices = list(range(len(wrapper.dataset)) if indices is None else indices)
    found = {}
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(indices) > 1:
            import multiprocessing
            pool = stack.enter_context(
                multiprocessing.get_context('fork').Pool(
                    workers, initializer=_init_worker, initargs=(wrapper, )))
            results = pool.imap_unordered(_scan_in_worker, indices, chunksize=8)
        else:
            results = ((i, ) + _scan_one(wrapper, i) for i in indices)
        if progress:
            from tqdm import tqdm
            results = stack.enter_context(
                tqdm(results, total=len(indices), desc=desc, unit='img', dynamic_ncols=True))
        for index, error, counts, tags in results:
            if error is not None:
                found[index] = error
            if counts is not None and label_counts is not None:
                label_counts[_label_path(wrapper, index)] = counts
            for key, (path, orientation) in (tags or {}).items():
                if path and exif_tags is not None:
                    exif_tags.setdefault(key, {})[path] = orientation
    return [found[i] for i in sorted(found)]


def _label_path(wrapper: 'ValidatedDataset', index: int) -> str:
    info = wrapper.dataset.get_data_info(index)
    return info.get('seg_map_path') or info.get('img_path') or f'sample {index}'
