"""``FCNRunner``: mmengine's Runner that first resolves the config's top-level variables."""
import copy

from mmengine.runner import Runner
from mmseg.registry import RUNNERS

from ..utils.config_vars import resolve_config_vars


@RUNNERS.register_module()
class FCNRunner(Runner):
    """:class:`mmengine.runner.Runner`, except that :meth:`from_cfg` first applies
    :func:`fcn_plugin.utils.config_vars.resolve_config_vars`: a child config's top-level
    ``num_classes``, ``classes``, ``palette``, ``data_root`` or ``max_iters`` (or a changed
    ``train_cfg.max_iters``, head ``num_classes``...) reaches every field derived from it.

    ``configs/_base_/fcn_runtime.py`` sets ``runner_type = 'FCNRunner'``; mmseg's
    ``tools/train.py`` and ``tools/test.py`` (and this repository's ``tools/train.py``) build
    the runner from the registry when ``runner_type`` is set.
    """

    @classmethod
    def from_cfg(cls, cfg) -> 'Runner':
        cfg = copy.deepcopy(cfg)
        resolve_config_vars(cfg)
        return super().from_cfg(cfg)
