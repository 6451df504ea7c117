"""ResumableInfiniteSampler: InfiniteSampler's sequence, startable after any number of indices."""
import itertools
import time

import pytest
import torch
from mmengine.dataset import InfiniteSampler
from mmseg.registry import DATA_SAMPLERS
from torch.utils.data import DataLoader

import fcn_plugin  # noqa: F401
from fcn_plugin.runtime import ResumableInfiniteSampler


class Unloadable:
    """A dataset of ``n`` samples that must not be loaded."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, idx):
        raise AssertionError(f'sample {idx} was loaded')


def reference(monkeypatch, size, shuffle, seed, rank, world_size, count):
    """The first ``count`` indices of mmengine's InfiniteSampler on ``rank`` of ``world_size``."""
    monkeypatch.setattr('mmengine.dataset.sampler.get_dist_info', lambda: (rank, world_size))
    sampler = InfiniteSampler(Unloadable(size), shuffle=shuffle, seed=seed)
    monkeypatch.undo()
    return list(itertools.islice(iter(sampler), count))


def take(sampler, count):
    return list(itertools.islice(iter(sampler), count))


CASES = [  # size, shuffle, seed, rank, world_size
    (7, True, 0, 0, 1),
    (7, False, 0, 0, 1),
    (6, True, 3, 0, 2),
    (7, True, 3, 1, 2),  # a size the world size does not divide: passes straddle the ranks
    (7, False, 5, 1, 2),
    (10, True, 1, 2, 3),
]


@pytest.mark.parametrize('size,shuffle,seed,rank,world_size', CASES)
def test_same_sequence_as_infinite_sampler(monkeypatch, size, shuffle, seed, rank, world_size):
    expected = reference(monkeypatch, size, shuffle, seed, rank, world_size, 60)
    sampler = ResumableInfiniteSampler(
        Unloadable(size), shuffle=shuffle, seed=seed, rank=rank, world_size=world_size)
    assert take(sampler, 60) == expected
    # rank and world size from get_dist_info, as InfiniteSampler takes them
    monkeypatch.setattr('mmengine.dataset.sampler.get_dist_info', lambda: (rank, world_size))
    sampler = ResumableInfiniteSampler(Unloadable(size), shuffle=shuffle, seed=seed)
    assert (sampler.rank, sampler.world_size) == (rank, world_size)
    assert take(sampler, 60) == expected


@pytest.mark.parametrize('size,shuffle,seed,rank,world_size', CASES)
def test_set_start(monkeypatch, size, shuffle, seed, rank, world_size):
    """set_start(k): the sequence of an unbroken sampler after its first k indices, for starts
    inside the first pass, on a pass boundary and several passes on."""
    expected = reference(monkeypatch, size, shuffle, seed, rank, world_size, 120)
    sampler = ResumableInfiniteSampler(
        Unloadable(size), shuffle=shuffle, seed=seed, rank=rank, world_size=world_size)
    take(sampler, 3)  # an iteration already under way is replaced
    for start in (0, 1, 2, 3, size - 1, size, size + 1, 2 * size, 37, 80):
        sampler.set_start(start)
        assert sampler.start == start
        assert take(sampler, 40) == expected[start:start + 40], start
    with pytest.raises(ValueError):
        sampler.set_start(-1)


def test_world_size_2_ranks_partition_the_sequence():
    """Ranks 0 and 1, each started at its k-th index, interleave into the 1-process sequence
    from position 2k: together they cover what an unbroken pair would have drawn."""
    one = ResumableInfiniteSampler(Unloadable(9), seed=4, rank=0, world_size=1)
    whole = take(one, 100)
    for k in (0, 5, 13):
        ranks = []
        for rank in (0, 1):
            sampler = ResumableInfiniteSampler(Unloadable(9), seed=4, rank=rank, world_size=2)
            sampler.set_start(k)
            ranks.append(take(sampler, 20))
        interleaved = [i for pair in zip(*ranks) for i in pair]
        assert interleaved == whole[2 * k:2 * k + 40]


def test_start_far_on_is_cheap_and_loads_nothing():
    """Starting at iteration 100,000 of SBD train (8,498 samples) only advances the generator:
    no sample is loaded (Unloadable raises) and it takes well under a second."""
    sampler = ResumableInfiniteSampler(Unloadable(8498), seed=0, rank=1, world_size=2)
    begin = time.perf_counter()
    sampler.set_start(100000)
    first = take(sampler, 4)
    assert time.perf_counter() - begin < 2.0
    # the same as drawing the passes: position 1 + 2 * 100000 of the whole sequence
    g = torch.Generator()
    g.manual_seed(0)
    position = 1 + 2 * 100000
    for _ in range(position // 8498):
        torch.randperm(8498, generator=g)
    order = torch.randperm(8498, generator=g).tolist()
    offset = position % 8498
    assert first == order[offset:offset + 8:2]


def test_in_a_dataloader_batches_start_at_the_iteration():
    """Through a DataLoader (batch 3, 2 workers), started at k * 3: the batches of an unbroken
    loader from its k-th on."""

    class Indices:

        def __len__(self):
            return 11

        def __getitem__(self, idx):
            return idx

    unbroken = DataLoader(
        Indices(), batch_size=3, sampler=ResumableInfiniteSampler(Indices(), seed=2))
    expected = [b.tolist() for b in itertools.islice(iter(unbroken), 12)]
    sampler = ResumableInfiniteSampler(Indices(), seed=2)
    sampler.set_start(5 * 3)
    loader = DataLoader(Indices(), batch_size=3, sampler=sampler, num_workers=2)
    assert [b.tolist() for b in itertools.islice(iter(loader), 7)] == expected[5:]


def test_registered_for_configs():
    assert DATA_SAMPLERS.get('ResumableInfiniteSampler') is ResumableInfiniteSampler
    sampler = DATA_SAMPLERS.build(
        dict(type='ResumableInfiniteSampler', shuffle=False),
        default_args=dict(dataset=Unloadable(4), seed=0))
    assert take(sampler, 6) == [0, 1, 2, 3, 0, 1]
