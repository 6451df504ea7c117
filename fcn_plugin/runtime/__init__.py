"""What keeps long runs safe, in four concepts and a guard, each one module:

- checkpoint files (:mod:`.checkpoint_files`, :mod:`.checkpoint_hook`): atomic, finite-only
  saves, retention, the checkpoint ``--resume`` continues, a disk-full message;
- the load policy (:mod:`.load_policy`): resume against ``load_from``, the fit rule, the
  learning-rate override and the checks of a resumed checkpoint, decided once;
- preflight (:mod:`.preflight`): config and data checks before the first iteration and before
  testing (``tools/check_dataset.py`` runs the same over every file);
- exact resume (:mod:`.exact_resume`): a train loop and sampler that resume bit-identically
  without replaying the data;
- the divergence guard (:mod:`.divergence`);
- one run per work dir (:mod:`.runs`): a lock held by a training run, and the run recorded in
  each checkpoint;
- preemption (:mod:`.preemption`): SIGTERM, SIGUSR1 and SIGINT stop a run after the current
  iteration, with the iteration reached saved.

Our configs install the hooks as named ``default_hooks`` (``configs/_base_/fcn_runtime.py``):
a config's own ``custom_hooks`` cannot drop them, and
``default_hooks=dict(preflight=dict(type='DisabledHook'))`` turns one off. Private runner state
is read in one place, :mod:`.runner_state`.
"""
from .checkpoint_files import find_newest_complete_checkpoint, is_complete_checkpoint
from .checkpoint_hook import AtomicCheckpointHook
from .divergence import DivergenceError, DivergenceHook
from .exact_resume import ResumableInfiniteSampler, ResumableIterBasedTrainLoop
from .hook_names import DisabledHook
from .load_policy import LoadPolicyHook
from .preemption import PreemptionHook, TrainingInterrupted
from .preflight import PreflightHook, check_split
from .runs import RunConflictError, WorkDirLockHook

__all__ = [
    'AtomicCheckpointHook', 'DisabledHook', 'DivergenceError', 'DivergenceHook', 'LoadPolicyHook',
    'PreemptionHook', 'PreflightHook', 'ResumableInfiniteSampler', 'ResumableIterBasedTrainLoop',
    'RunConflictError', 'TrainingInterrupted', 'WorkDirLockHook', 'check_split',
    'find_newest_complete_checkpoint', 'is_complete_checkpoint'
]
