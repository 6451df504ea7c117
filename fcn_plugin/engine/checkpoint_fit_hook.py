"""Tell the model's checkpoint check (:mod:`fcn_plugin.utils.checkpoint_fit`) which load the
runner is about to do: ``load_from`` of a training run (a stage initialised from the previous
one, partial by design) or a load that must fit exactly (test, val, ``--resume``)."""
from collections.abc import Mapping

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop
from mmseg.registry import HOOKS

from ..utils.checkpoint_fit import attach_checkpoint_fit, remember_source


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """In ``before_run`` (mmengine calls it before ``load_or_resume``; priority ``LOW``, after
    ``ResumeHook`` settled ``resume``/``load_from``): the model's checkpoint check is attached
    (also to mmseg's plain ``EncoderDecoder``) and set to

    - ``'stage'`` for ``load_from`` in a training run that does not resume: only the layers the
      new stage adds may be missing (FCN-16s's score_pool4 from an FCN-32s checkpoint);
    - ``'strict'`` otherwise (``tools/test.py``, validation, ``--resume``): every key, every
      shape.

    A model configured with ``checkpoint_fit='off'`` (or ``'stage'``) keeps its setting.
    ``after_load_checkpoint`` names the file in fit errors, and refuses to resume from a file
    without mmengine's ``meta`` (a bare state dict) with a message instead of ``KeyError``.
    The configured setting is restored in ``before_train``.
    """

    priority = 'LOW'

    def __init__(self):
        self._configured = None

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_run(self, runner) -> None:
        model = self._model(runner)
        self._configured = getattr(model, 'checkpoint_fit', 'strict')
        training = isinstance(getattr(runner, '_train_loop', None), BaseLoop)
        staged = training and getattr(runner, '_load_from', None) is not None and \
            not getattr(runner, '_resume', False)
        mode = self._configured
        if mode == 'strict' and staged:
            mode = 'stage'
        attach_checkpoint_fit(model, mode)

    def after_load_checkpoint(self, runner, checkpoint) -> None:
        resuming = getattr(runner, '_resume', False)
        filename = runner._load_from if runner._load_from is not None else 'the checkpoint'
        if resuming and runner._load_from is None:
            from mmengine.runner.checkpoint import find_latest_checkpoint
            filename = find_latest_checkpoint(runner.work_dir) or filename
        remember_source(checkpoint, filename, overwrite=False)  # the tools' loaders know it
        if resuming and isinstance(checkpoint, Mapping) and 'meta' not in checkpoint:
            raise ValueError(
                f"--resume: {filename} has no 'meta' (iteration, epoch): it holds weights only, "
                'not a training checkpoint written by the runner. Start a new run from it with '
                'load_from instead of resuming.')

    def before_train(self, runner) -> None:
        if self._configured is not None:
            self._model(runner).checkpoint_fit = self._configured
