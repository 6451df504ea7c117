"""fcn_plugin: the original VGG16 FCN-32s/16s/8s (Long, Shelhamer, Darrell) for MMSegmentation.

Importing the package registers every component into MMSegmentation's registries, so configs
only need ``custom_imports = dict(imports=['fcn_plugin'], allow_failed_imports=False)``.
"""
from .utils import register_checkpoint_safe_globals

register_checkpoint_safe_globals()

from . import datasets, engine, evaluation, models  # noqa: E402,F401  (registration)

__version__ = '0.1.0'
