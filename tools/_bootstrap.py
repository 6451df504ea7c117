"""Make ``fcn_plugin`` importable from a source checkout and register it (tools only).

The tools run as scripts (``python tools/train.py``), so ``sys.path[0]`` is ``tools/``. After
``pip install -e .`` (``make setup``) the package is importable anyway; from a bare checkout
the repository root is added, as mmseg's shell scripts do with PYTHONPATH.
"""
import os.path as osp
import sys


def import_plugin():
    try:
        import fcn_plugin  # noqa: F401
    except ImportError:
        sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
        import fcn_plugin  # noqa: F401
    return fcn_plugin
