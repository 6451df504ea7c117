"""The runner state the runtime needs that mmengine 0.10.7 does not expose: the one module that
reads or writes private attributes of ``mmengine.runner.Runner``.

- Which loops a run built (``_train_loop``, ``_val_loop``, ``_test_loop``): ``Runner.train()``
  builds the train and val loops, ``Runner.test()`` the test loop, and only then calls the
  hooks' ``before_run``. The public properties (``runner.train_loop``...) *build* a loop that
  is still a config dict, so asking ``runner.train_loop`` in a test run would build the train
  data loader; and no public attribute says whether the run is a training run.
- What the run will load (``_resume``, ``_load_from``): ``Runner.load_or_resume`` reads them
  after ``before_run``; there is no public setter, and ``runner.cfg`` is a copy that
  ``load_or_resume`` does not read. :class:`~.load_policy.LoadPolicyHook` is the only writer.
"""
from typing import List, NamedTuple, Optional, Tuple

from mmengine.runner import BaseLoop

LOOPS = (('train_dataloader', '_train_loop'), ('val_dataloader', '_val_loop'), ('test_dataloader',
                                                                                '_test_loop'))


def is_training(runner) -> bool:
    """Whether ``runner`` is running ``train()``: its train loop is built and has not reached
    its end (a runner that tested or validated after training has)."""
    loop = getattr(runner, '_train_loop', None)
    return isinstance(loop, BaseLoop) and loop.iter < loop.max_iters


def built_datasets(runner) -> List[Tuple[str, object]]:
    """``(config key of the loader, dataset)`` of the loops this run built (building one here
    would load its data)."""
    found = []
    for key, attr in LOOPS:
        loop = getattr(runner, attr, None)
        if isinstance(loop, BaseLoop) and getattr(loop, 'dataloader', None) is not None:
            found.append((key, loop.dataloader.dataset))
    return found


class LoadRequest(NamedTuple):
    """What ``Runner.load_or_resume`` will do: resume (``--resume``) and/or load a file."""
    resume: bool
    load_from: Optional[str]


def load_request(runner) -> LoadRequest:
    return LoadRequest(bool(getattr(runner, '_resume', False)), getattr(runner, '_load_from', None))


def set_load_request(runner, request: LoadRequest) -> None:
    """Make ``Runner.load_or_resume`` resume from / load ``request.load_from`` (or nothing)."""
    runner._resume = request.resume
    runner._load_from = request.load_from
