"""Runner hooks that keep long runs safe: config checks, atomic checkpoints, exact resume,
divergence stop, label checks (``configs/_base_/fcn_runtime.py`` enables all of them); a train
loop whose ``--resume`` positions the sampler instead of replaying the data; and ``FCNRunner``,
which passes a child config's top-level variables on before building the runner."""
from .atomic_checkpoint_hook import (AtomicCheckpointHook, find_newest_complete_checkpoint,
                                     is_complete_checkpoint)
from .config_check_hook import ConfigCheckHook, ConfigError
from .confusion_matrix_hook import ConfusionMatrixHook, write_confusion_matrix
from .data_check_hook import DataCheckHook
from .divergence_hook import DivergenceError, DivergenceHook
from .exact_resume_hook import ExactResumeHook
from .logger_hook import RankZeroLoggerHook
from .resumable_loop import ResumableIterBasedTrainLoop
from .runner import FCNRunner

__all__ = [
    'ConfusionMatrixHook', 'write_confusion_matrix',
    'AtomicCheckpointHook', 'ConfigCheckHook', 'ConfigError', 'DataCheckHook', 'DivergenceError',
    'DivergenceHook', 'ExactResumeHook', 'FCNRunner', 'RankZeroLoggerHook',
    'ResumableIterBasedTrainLoop',
    'find_newest_complete_checkpoint', 'is_complete_checkpoint'
]
