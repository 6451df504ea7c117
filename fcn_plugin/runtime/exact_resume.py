"""Exact resume: ``--resume`` ends bit-identical (on the CPU) to a run that never stopped, and
costs nothing per iteration already trained.

mmengine 0.10.7 restores on resume the weights, optimizer state (SGD momentum), parameter
schedulers, counters, message hub and seed. Two things it does not:

- the data position: its ``IterBasedTrainLoop`` fetches and discards one batch per finished
  iteration (resuming at iteration 100,000 loads and decodes 100,000 samples first).
  :class:`ResumableIterBasedTrainLoop` starts :class:`ResumableInfiniteSampler` (mmengine's
  ``InfiniteSampler`` order) at the resumed iteration's batch instead;
- the global random state (dropout masks in fc6/fc7, random transforms): after resuming it is
  whatever building and loading left, and in the unbroken run it also depends on what ran
  since the checkpoint (a validation draws from torch's generator). Saving the generators in
  the checkpoint would still miss those draws. The loop instead seeds python, numpy and torch
  from the position: before each iteration from ``(seed, iteration)``, before each batch is
  fetched from ``(seed, fetch number)`` (random transforms in the main process).

With workers (``num_workers > 0``) the transforms run in the worker processes, which mmengine
seeds once per worker (from the seed, rank and worker id), not per batch: a resume starts the
workers at the resumed iteration, so random transforms *in workers* draw differently from the
unbroken run from there on. The plugin's pipelines have no random transforms (the FCN recipe
trains on full images without augmentation); with random augmentation use ``num_workers=0``
for exactness. Without a fixed ``randomness.seed`` the data order cannot be reproduced (a
warning says so). Bit identity holds on the CPU; CUDA kernels may be nondeterministic
(``randomness.deterministic``).
"""
import itertools
import logging
import random
from typing import Iterator, Optional, Sized

import numpy as np
import torch
from mmengine.dataset import InfiniteSampler
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmseg.registry import DATA_SAMPLERS, LOOPS
from torch.utils.data import BatchSampler

ITERATION_STREAM = 0  # dropout and anything else random in a train step
FETCH_STREAM = 1  # random transforms run in the main process (num_workers=0)


def seed_everything_from(seed: int, stream: int, count: int) -> None:
    """Seed python, numpy and torch (CPU and every GPU) from ``(seed, stream, count)``.

    ``numpy.random.SeedSequence`` mixes the three numbers into independent, well-spread
    seeds, so consecutive iterations do not get correlated random streams.
    """
    torch_seed, numpy_seed = np.random.SeedSequence([seed, stream, count]).generate_state(
        2, dtype=np.uint64)
    random.seed(int(torch_seed))
    np.random.seed(int(numpy_seed) & 0xFFFFFFFF)
    torch.manual_seed(int(torch_seed))  # also seeds every CUDA device


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


class _SeededFetches:
    """The loop's dataloader iterator, reseeded before each fetch from the fetch's number in
    the run (``fetches``). Its first ``skip`` fetches return ``None`` without loading: the
    batches mmengine's ``run()`` discards after a resume, which the positioned sampler has
    already passed."""

    def __init__(self, iterator, seed: int, skip: int = 0) -> None:
        self._iterator = iterator
        self._seed = seed
        self._skip = skip
        self.fetches = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.fetches += 1
        if self._skip:
            self._skip -= 1
            return None
        seed_everything_from(self._seed, FETCH_STREAM, self.fetches - 1)
        return next(self._iterator)


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """mmengine's ``IterBasedTrainLoop`` (same arguments) that resumes exactly, without
    loading the batches already trained on (see the module doc).

    When the run resumes at iteration ``k``, :meth:`run` calls ``sampler.set_start(k *
    batch_size)`` (:class:`ResumableInfiniteSampler`) and creates a new dataloader iterator, so
    the first batch fetched is the one an unbroken run fetches at iteration ``k``;
    ``skipped_batches`` is ``k`` (0 for a new run). The iterator mmengine created before the
    checkpoint was loaded is dropped first: with ``num_workers > 0`` it has already handed its
    workers up to ``prefetch_factor * num_workers`` batches from position 0 (its workers shut
    down as it is released; with ``persistent_workers=True`` the DataLoader keeps one iterator,
    which ``iter(dataloader)`` resets). So at most that prefetch is loaded in vain, whatever
    the iteration. A sampler without ``set_start`` (or a custom ``batch_sampler``, which may
    group the indices in any way) cannot be positioned: the loop then warns, naming it, and
    replays the data as mmengine does (seeded fetch by fetch, so still exact).
    """

    skipped_batches = 0

    def run(self):
        """Position the data and seed the fetches, then mmengine's ``run()``."""
        seed = (self.runner.cfg.get('randomness') or {}).get('seed')
        if seed is None:
            print_log(
                'ResumableIterBasedTrainLoop: randomness.seed is not set, so a run '
                'resumed with --resume will not replay the interrupted run\'s data order '
                'and random draws. Set randomness=dict(seed=...) for exact resumption.',
                logger='current',
                level=logging.WARNING)
        self.skipped_batches = self._position_dataloader()
        self.dataloader_iterator = _SeededFetches(self.dataloader_iterator, self.runner.seed,
                                                  self.skipped_batches)
        return super().run()

    def run_iter(self, data_batch) -> None:
        seed_everything_from(self.runner.seed, ITERATION_STREAM, self.iter)
        super().run_iter(data_batch)

    def _not_positionable(self) -> Optional[str]:
        """Why the train sampler cannot start at an iteration's batch (None if it can)."""
        batch_sampler = getattr(self.dataloader, 'batch_sampler', None)
        if batch_sampler is None:
            return 'the train dataloader has no batch sampler'
        if type(batch_sampler) is not BatchSampler:
            return (f'the train batch sampler {type(batch_sampler).__name__} may group the '
                    "sampler's indices in any order")
        sampler = batch_sampler.sampler
        if not callable(getattr(sampler, 'set_start', None)):
            return (f'the train sampler {type(sampler).__name__} cannot start at a given '
                    'position (it has no set_start(); use ResumableInfiniteSampler)')
        return None

    def _position_dataloader(self) -> int:
        """Position the sampler at iteration ``self.iter``'s batch; return the batches skipped."""
        if self.iter == 0:
            return 0
        reason = self._not_positionable()
        if reason is not None:
            print_log(
                f'ResumableIterBasedTrainLoop: {reason}, so resuming at iteration {self.iter} '
                f'fetches and discards {self.iter} batches (it loads their samples).',
                logger='current',
                level=logging.WARNING)
            return 0
        batch_sampler = self.dataloader.batch_sampler
        # the iterator built in __init__ goes first: its workers (if any) shut down with it
        self.dataloader_iterator = None
        start = self.iter * batch_sampler.batch_size
        batch_sampler.sampler.set_start(start)
        # an infinite sampler: the DataLoader's iterator never ends (persistent workers: this
        # resets the DataLoader's one iterator)
        self.dataloader_iterator = iter(self.dataloader)
        print_log(
            f'Resuming at iteration {self.iter}: the train sampler starts after {start} '
            'indices of this rank, so the "Advance dataloader" below loads no data for the '
            'batches already trained on.',
            logger='current',
            level=logging.INFO)
        return self.iter
