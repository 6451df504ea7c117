"""An iteration-based train loop whose ``--resume`` does not load the batches already trained on."""
import logging
from typing import Optional

from mmengine.logging import print_log
from mmengine.runner.loops import IterBasedTrainLoop, _InfiniteDataloaderIterator
from mmseg.registry import LOOPS
from torch.utils.data import BatchSampler


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """mmengine's ``IterBasedTrainLoop`` with a resume whose cost does not grow with the iteration.

    mmengine 0.10.7 resumes the data order by fetching and discarding one batch per finished
    iteration (``Advance dataloader N steps``): resuming at iteration 100,000 loads and decodes
    100,000 samples first. This loop instead positions the sampler: when the run resumes at
    iteration ``k`` (``self._iter > 0`` once the checkpoint is loaded), :meth:`run` calls
    ``sampler.set_start(k * batch_size)`` (``ResumableInfiniteSampler``) and creates a new
    dataloader iterator, so the first batch fetched is the one an unbroken run fetches at
    iteration ``k``. Everything else is mmengine's ``run()``.

    The iterator mmengine created in ``__init__`` (before the checkpoint was loaded) is
    replaced before the ``before_train`` hooks run, so hooks that wrap it
    (``ExactResumeHook``) wrap the repositioned one. With ``num_workers > 0`` that first
    iterator has already started its workers and handed them up to
    ``prefetch_factor * num_workers`` batches from position 0: the workers of a non-persistent
    iterator are shut down; with ``persistent_workers=True`` the DataLoader keeps one iterator,
    which ``iter(dataloader)`` resets (its workers finish and discard the prefetched batches).
    Either way at most that prefetch is loaded in vain, whatever the iteration.

    ``skipped_batches`` is the number of batches the iterator was positioned past without
    fetching them (``k``, or 0 for a new run or a replay): ``ExactResumeHook`` numbers its
    fetches from it.

    A sampler without ``set_start`` (or a custom ``batch_sampler``, which may group the
    indices in any way) cannot be positioned: then the loop warns, naming it, and skips as
    mmengine does.
    """

    skipped_batches = 0

    def run(self):
        """Launch training (``IterBasedTrainLoop.run`` without replaying the data on resume)."""
        self.skipped_batches = self._position_dataloader()
        self.runner.call_hook('before_train')
        # In iteration-based training loop, we treat the whole training process
        # as a big epoch and execute the corresponding hook.
        self.runner.call_hook('before_train_epoch')
        # the fallback (warned about above): mmengine's skipping
        for _ in range(self._iter - self.skipped_batches):
            next(self.dataloader_iterator)
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()

            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)

            self._decide_current_val_interval()
            if (self.runner.val_loop is not None
                    and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0
                         or self._iter == self._max_iters)):
                self.runner.val_loop.run()

        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model

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
        """Position the sampler at iteration ``self._iter``'s batch; return the batches skipped."""
        if self._iter == 0:
            return 0
        reason = self._not_positionable()
        if reason is not None:
            print_log(
                f'ResumableIterBasedTrainLoop: {reason}, so resuming at iteration {self._iter} '
                f'fetches and discards {self._iter} batches (it loads their samples).',
                logger='current',
                level=logging.WARNING)
            return 0
        batch_sampler = self.dataloader.batch_sampler
        # Stop the iterator built in __init__ first: its workers (if any) are not needed again.
        old = self.dataloader_iterator
        self.dataloader_iterator = None
        inner = getattr(old, '_iterator', None)
        if not getattr(self.dataloader, 'persistent_workers', False) and hasattr(
                inner, '_shutdown_workers'):
            inner._shutdown_workers()
        del old, inner
        start = self._iter * batch_sampler.batch_size
        batch_sampler.sampler.set_start(start)
        # persistent workers: iter(dataloader) resets the DataLoader's one iterator
        self.dataloader_iterator = _InfiniteDataloaderIterator(self.dataloader)
        print_log(
            f'Resuming at iteration {self._iter}: the train sampler starts after '
            f'{start} indices of this rank; no data is '
            'loaded for the batches already trained on.',
            logger='current',
            level=logging.INFO)
        return self._iter
