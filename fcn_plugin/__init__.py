"""fcn_plugin: the original VGG16 FCN-32s/16s/8s (Long, Shelhamer, Darrell) for MMSegmentation.

Importing the package adds every component to MMSegmentation's registries under its own name,
so configs only need ``custom_imports = dict(imports=['fcn_plugin'], allow_failed_imports=False)``;
nothing that mmseg or mmengine registered is replaced. The import also adds mmengine's
checkpoint classes to torch's weights-only allowlist (:mod:`fcn_plugin.utils.checkpoint_safety`),
and makes an unknown or misspelt argument of any of these components a ``ConfigError`` naming
the closest accepted name (:mod:`fcn_plugin.utils.arguments`).
"""
from .utils import register_checkpoint_safe_globals

register_checkpoint_safe_globals()

from . import datasets, evaluation, models, runtime  # noqa: E402,F401  (registration)
from .utils.arguments import guard_registered_arguments  # noqa: E402

guard_registered_arguments()  # every class registered above: unknown arguments are errors

__version__ = '0.1.0'
