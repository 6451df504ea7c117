"""Make ``fcn_plugin`` importable from a source checkout, register it and make every checkpoint
load weights-only (tools only).

Imported by every tool before mmengine: it also silences setuptools' pkg_resources warning.

The tools run as scripts (``python tools/train.py``), so ``sys.path[0]`` is ``tools/``. After
``pip install -e .`` (``make setup``) the package is importable anyway; from a bare checkout
the repository root is added, as mmseg's shell scripts do with PYTHONPATH.
"""
import os.path as osp
import sys
import warnings

# mmengine imports pkg_resources (its mmseg:: config lookup needs it; setuptools < 81 keeps it),
# which warns on every start; the tools import this module before mmengine to keep quiet.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)


def import_plugin():
    """Import ``fcn_plugin`` and route mmengine's checkpoint loading through
    :func:`fcn_plugin.utils.checkpoint_safety.install_safe_checkpoint_loaders`: in our tools a
    checkpoint that would run code is refused even if ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` is
    set (importing the package alone changes no loader)."""
    try:
        import fcn_plugin  # noqa: F401
    except ImportError:
        sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
        import fcn_plugin  # noqa: F401
    from fcn_plugin.utils.checkpoint_safety import install_safe_checkpoint_loaders
    install_safe_checkpoint_loaders()
    return fcn_plugin
