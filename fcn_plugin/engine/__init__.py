"""Runner hooks that keep long runs safe: config checks, atomic checkpoints, ``--resume`` of the
work dir's own checkpoints, exact resume, divergence stop, label checks, a rank-0 test JSON
(``configs/_base_/fcn_runtime.py`` and the schedules select them); a train loop whose
``--resume`` positions the sampler instead of replaying the data; and ``FCNRunner``, which
passes a child config's top-level variables on before building the runner. Every class is
registered under its own name: mmengine's and mmseg's hooks stay as they are."""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .checkpoint_fit_hook import CheckpointFitHook
from .config_check_hook import ConfigCheckHook, ConfigError
from .confusion_matrix_hook import ConfusionMatrixHook, write_confusion_matrix
from .data_check_hook import DataCheckHook
from .divergence_hook import DivergenceError, DivergenceHook
from .exact_resume_hook import ExactResumeHook
from .logger_hook import RankZeroLoggerHook
from .lr_override_hook import LrOverrideHook
from .resumable_loop import ResumableIterBasedTrainLoop
from .resume_hook import ResumeHook, find_newest_complete_checkpoint, is_complete_checkpoint
from .runner import FCNRunner

__all__ = [
    'ConfusionMatrixHook', 'write_confusion_matrix',
    'AtomicCheckpointHook', 'CheckpointFitHook', 'ConfigCheckHook', 'ConfigError', 'DataCheckHook', 'DivergenceError',
    'DivergenceHook', 'ExactResumeHook', 'FCNRunner', 'LrOverrideHook', 'RankZeroLoggerHook',
    'ResumableIterBasedTrainLoop', 'ResumeHook',
    'find_newest_complete_checkpoint', 'is_complete_checkpoint'
]
