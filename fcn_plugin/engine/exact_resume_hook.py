"""Seed every iteration from (seed, iteration) so that ``--resume`` replays a run exactly."""
import logging
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

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


class _SeededFetches:
    """Wraps the train loop's infinite dataloader iterator; reseeds before each fetch."""

    def __init__(self, iterator, seed: int) -> None:
        self._iterator = iterator
        self._seed = seed
        self.fetches = 0

    def __iter__(self):
        return self

    def __next__(self):
        seed_everything_from(self._seed, FETCH_STREAM, self.fetches)
        self.fetches += 1
        return next(self._iterator)

    def __getattr__(self, name):
        return getattr(self._iterator, name)


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Make a run resumed with ``--resume`` end bit-identical (on the CPU) to an unbroken one.

    What mmengine 0.10.7 already restores on resume: weights, optimizer state (SGD momentum),
    parameter schedulers, the iteration/epoch counters, the message hub and the seed; and the
    data order: ``IterBasedTrainLoop`` re-draws the first ``k`` batches from the same
    seeded sampler (``InfiniteSampler`` with ``randomness.seed``) and throws them away (this
    loads, but does not train on, ``k`` samples).

    What it does not restore is the global random state (dropout masks in fc6/fc7, random
    transforms): after resuming, it is whatever model building, loading and that skipping left,
    and in the unbroken run it also depends on what ran since the checkpoint (a validation
    draws from torch's generator). Saving the generators' state in the checkpoint would still
    miss those draws. This hook instead makes the random state a function of the position:

    - ``before_train_iter``: python, numpy and torch (CPU and CUDA) are seeded from
      ``(runner.seed, iteration)``, so iteration ``i`` draws the same dropout masks whether or
      not the run was interrupted, whatever happened before it;
    - ``before_train``: the loop's dataloader iterator is wrapped to reseed from
      ``(runner.seed, fetch number)`` before each batch is fetched, which covers random
      transforms in the main process (``num_workers=0``). With workers, their generators are
      seeded per worker by mmengine and replayed by the skipping above.

    ``runner.seed`` comes from ``randomness.seed`` (mmengine restores it from the checkpoint);
    without a fixed seed the sampler's order cannot be reproduced, hence the warning. Bit
    identity holds on the CPU; CUDA kernels may be nondeterministic (``randomness.deterministic``).
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        randomness = getattr(runner, '_randomness_cfg', None) or {}
        if randomness.get('seed') is None:
            print_log(
                'ExactResumeHook: randomness.seed is not set, so the data order of a run '
                'resumed with --resume will differ from the interrupted run. Set '
                'randomness=dict(seed=...) for exact resumption.',
                logger='current',
                level=logging.WARNING)

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        iterator = getattr(loop, 'dataloader_iterator', None)
        if iterator is not None and not isinstance(iterator, _SeededFetches):
            loop.dataloader_iterator = _SeededFetches(iterator, runner.seed)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        seed_everything_from(runner.seed, ITERATION_STREAM, runner.iter)
