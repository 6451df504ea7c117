"""Make ``fcn_plugin`` importable from a source checkout and register it (tools only).

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
    try:
        import fcn_plugin  # noqa: F401
    except ImportError:
        sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
        import fcn_plugin  # noqa: F401
    return fcn_plugin
