"""Runner hooks that keep long runs safe: config checks, atomic checkpoints, exact resume,
divergence stop. ``configs/_base_/fcn_runtime.py`` enables all of them."""
from .atomic_checkpoint_hook import (AtomicCheckpointHook, find_newest_complete_checkpoint,
                                     is_complete_checkpoint)
from .config_check_hook import ConfigCheckHook, ConfigError
from .divergence_hook import DivergenceError, DivergenceHook
from .exact_resume_hook import ExactResumeHook
from .logger_hook import RankZeroLoggerHook

__all__ = [
    'AtomicCheckpointHook', 'ConfigCheckHook', 'ConfigError', 'DivergenceError',
    'DivergenceHook', 'ExactResumeHook', 'RankZeroLoggerHook', 'find_newest_complete_checkpoint',
    'is_complete_checkpoint'
]
