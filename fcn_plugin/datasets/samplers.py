"""An infinite sampler that a resumed run can start at a given position, without loading data."""
import itertools
from typing import Iterator, Optional, Sized

import torch
from mmengine.dataset import InfiniteSampler
from mmseg.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class ResumableInfiniteSampler(InfiniteSampler):
    """mmengine's ``InfiniteSampler`` that can start after the first ``k`` indices of its rank.

    Without :meth:`set_start` it yields exactly ``InfiniteSampler``'s sequence for the same
    dataset length, ``seed``, ``shuffle``, rank and world size: one permutation of the dataset
    per pass from a ``torch.Generator`` seeded with ``seed`` (``arange`` without shuffling),
    the concatenation sliced by rank (positions ``rank, rank + world_size, ...``).

    ``set_start(k)`` makes the next iteration over the sampler begin with this rank's
    ``(k + 1)``-th index, i.e. the sequence an unbroken ``InfiniteSampler`` yields after its
    first ``k``. The skipped passes only advance the generator (one ``randperm`` per skipped
    pass, no ``tolist``); nothing is loaded. ``ResumableIterBasedTrainLoop`` calls it with
    ``iteration * batch_size`` when a run is resumed, instead of fetching (loading) and
    discarding the batches already trained on.

    As in ``InfiniteSampler``, every ``iter()`` draws from one index generator (and closing
    an iteration closes it). ``set_start`` replaces that generator: iterations already under
    way keep drawing from the old one, so create the DataLoader iterator after calling it.

    Args:
        dataset (Sized): The dataset.
        shuffle (bool): Whether to shuffle the dataset. Defaults to True.
        seed (int, optional): Random seed; None draws one (synchronised across ranks).
        rank (int, optional): This process's rank; None takes it from ``get_dist_info()``.
        world_size (int, optional): The number of processes; None takes it from
            ``get_dist_info()``.
    """

    def __init__(self,
                 dataset: Sized,
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 rank: Optional[int] = None,
                 world_size: Optional[int] = None) -> None:
        self._start = 0
        super().__init__(dataset, shuffle=shuffle, seed=seed)
        if rank is not None or world_size is not None:
            self.rank = self.rank if rank is None else int(rank)
            self.world_size = self.world_size if world_size is None else int(world_size)
            if not 0 <= self.rank < self.world_size:
                raise ValueError(f'rank {self.rank} is not in [0, world_size={self.world_size})')
            self.indices = self._indices_of_rank()

    @property
    def start(self) -> int:
        """How many of this rank's indices the current index generator skipped."""
        return self._start

    def set_start(self, start: int) -> None:
        """Make the next iteration begin after this rank's first ``start`` indices."""
        start = int(start)
        if start < 0:
            raise ValueError(f'start must be >= 0, got {start}')
        self._start = start
        self.indices = self._indices_of_rank()

    def _infinite_indices_from(self, position: int) -> Iterator[int]:
        """``InfiniteSampler._infinite_indices()`` without its first ``position`` indices."""
        g = torch.Generator()
        g.manual_seed(self.seed)
        passes, offset = divmod(position, self.size)
        if self.shuffle:
            for _ in range(passes):  # advance the generator as the skipped passes did
                torch.randperm(self.size, generator=g)
        while True:
            if self.shuffle:
                order = torch.randperm(self.size, generator=g)
            else:
                order = torch.arange(self.size)
            yield from order[offset:].tolist()
            offset = 0

    def _indices_of_rank(self) -> Iterator[int]:
        """Slice the infinite indices by rank, after this rank's first ``start`` indices."""
        if self.size == 0:  # as InfiniteSampler: yields nothing (and never returns)
            yield from super()._indices_of_rank()
            return
        # this rank's k-th index (from 0) is the (rank + k * world_size)-th of the whole sequence
        first = self.rank + self._start * self.world_size
        yield from itertools.islice(self._infinite_indices_from(first), 0, None, self.world_size)
