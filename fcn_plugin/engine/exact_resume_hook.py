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
    """Wraps the train loop's infinite dataloader iterator; reseeds before each fetch.

    ``fetches`` is the number of the next fetch in the whole run: it starts at
    ``first_fetch``, the batches the iterator was positioned past without fetching them.
    """

    def __init__(self, iterator, seed: int, first_fetch: int = 0) -> None:
        self._iterator = iterator
        self._seed = seed
        self.fetches = first_fetch

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
    parameter schedulers, the iteration/epoch counters, the message hub and the seed. The data
    order: the plugin's configs use ``ResumableIterBasedTrainLoop`` with
    ``ResumableInfiniteSampler`` (seeded with ``randomness.seed``), which start the sampler at
    resumed iteration ``k``'s batch (``k * batch_size`` indices of this rank) without loading
    the first ``k`` batches. mmengine's ``IterBasedTrainLoop``, or that loop with a sampler
    that cannot be positioned, instead re-draws the first ``k`` batches from the seeded sampler
    and throws them away (this loads, but does not train on, ``k`` batches).

    What it does not restore is the global random state (dropout masks in fc6/fc7, random
    transforms): after resuming, it is whatever model building and loading left, and in the
    unbroken run it also depends on what ran since the checkpoint (a validation draws from
    torch's generator). Saving the generators' state in the checkpoint would still miss those
    draws. This hook instead makes the random state a function of the position:

    - ``before_train_iter``: python, numpy and torch (CPU and CUDA) are seeded from
      ``(runner.seed, iteration)``, so iteration ``i`` draws the same dropout masks whether or
      not the run was interrupted, whatever happened before it;
    - ``before_train``: the loop's dataloader iterator is wrapped to reseed from
      ``(runner.seed, fetch number)`` before each batch is fetched, which covers random
      transforms in the main process (``num_workers=0``). The fetch number is the batch's
      position in the run: after a resume without replay it starts at the resumed iteration
      (the loop's ``skipped_batches``); a replay counts the replayed fetches.

    With workers (``num_workers > 0``) the transforms run in the worker processes, whose
    generators mmengine seeds once per worker when the workers start (from the seed, rank and
    worker id), not per batch. A replay passes the same batches through the same workers, so
    their random draws match the unbroken run; a resume without replay starts the workers at
    the resumed iteration, so random transforms *in workers* draw differently from the
    unbroken run from there on. The plugin's pipelines have no random transforms (the FCN
    recipe trains on full images without augmentation), so their data are identical; for
    exactness with random augmentation use ``num_workers=0``.

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
            # ResumableIterBasedTrainLoop positions the data at the resumed iteration without
            # fetching the skipped batches: number the fetches from there. mmengine's loop (or
            # the fallback) replays them through this wrapper, which counts them.
            first_fetch = int(getattr(loop, 'skipped_batches', 0))
            loop.dataloader_iterator = _SeededFetches(iterator, runner.seed, first_fetch)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        seed_everything_from(runner.seed, ITERATION_STREAM, runner.iter)
