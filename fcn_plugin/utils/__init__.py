from .checkpoint_safety import checkpoint_safe_globals, register_checkpoint_safe_globals
from .config_vars import ConfigError, check_config_vars, load_config

__all__ = [
    'ConfigError', 'checkpoint_safe_globals', 'register_checkpoint_safe_globals',
    'check_config_vars', 'load_config'
]
