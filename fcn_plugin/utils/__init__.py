from .checkpoint_safety import checkpoint_safe_globals, register_checkpoint_safe_globals
from .config_vars import check_config_vars, load_config, resolve_config_vars

__all__ = [
    'checkpoint_safe_globals', 'register_checkpoint_safe_globals', 'check_config_vars',
    'load_config', 'resolve_config_vars'
]
