"""Only rank 0 writes the test metrics JSON (mmengine 0.10.7 writes it from every rank), in a
hook of its own name: importing fcn_plugin replaces nothing mmseg or mmengine registered."""
import os.path as osp
import subprocess
import sys
import textwrap
from types import SimpleNamespace
from unittest import mock

from mmengine.hooks import LoggerHook
from mmseg.registry import HOOKS

from fcn_plugin.evaluation import RankZeroLoggerHook


def fake_runner(tmp_path):
    logged = []
    processor = SimpleNamespace(get_log_after_epoch=lambda *a, **k: ({
        'mIoU': 50.0
    }, 'Iter(test) mIoU: 50.0'))
    runner = SimpleNamespace(
        log_dir=str(tmp_path),
        timestamp='20261125_000000',
        log_processor=processor,
        test_dataloader=[0, 1],
        logger=SimpleNamespace(info=logged.append))
    return runner, logged


def test_logger_hook_stays_mmengines():
    assert type(HOOKS.build(dict(type='LoggerHook'))) is LoggerHook
    assert isinstance(HOOKS.build(dict(type='RankZeroLoggerHook', interval=7)), RankZeroLoggerHook)


REPLACED = textwrap.dedent('''
    import warnings; warnings.filterwarnings('ignore')
    import mmengine.registry as E, mmseg.registry as R
    import mmengine.hooks, mmengine.runner, mmseg.apis, mmseg.datasets, mmseg.engine
    import mmseg.evaluation, mmseg.models, mmseg.visualization
    registries = {f'{m.__name__}.{n}': r for m in (E, R) for n, r in vars(m).items()
                  if isinstance(r, E.Registry)}
    before = {k: dict(r.module_dict) for k, r in registries.items()}
    import fcn_plugin

    def shadows(registry, name):  # a name of a parent registry (mmengine's for mmseg's)
        parent = registry.parent
        while parent is not None:
            if name in parent.module_dict:
                return True
            parent = parent.parent
        return False

    print([(k, n) for k, d in before.items() for n, v in d.items()
           if registries[k].module_dict.get(n) is not v] +
          [(k, n) for k, r in registries.items() for n in set(r.module_dict) - set(before[k])
           if shadows(r, n)])
''')


def test_importing_the_plugin_replaces_nothing():
    """Every name mmengine's and mmseg's registries held before ``import fcn_plugin`` (what
    custom_imports does) still maps to the same object after it, and no added name hides one
    of a parent registry (as a ``LoggerHook`` in mmseg's HOOKS hid mmengine's). In a fresh
    process: the test session has imported the plugin already."""
    result = subprocess.run([sys.executable, '-c', REPLACED], capture_output=True, text=True)
    assert result.stdout.strip() == '[]', result.stdout + result.stderr[-2000:]


def test_only_rank_zero_writes_the_test_json(tmp_path):
    hook = RankZeroLoggerHook()
    hook.json_log_path = '20261125_000000.json'
    path = osp.join(tmp_path, hook.json_log_path)
    runner, logged = fake_runner(tmp_path)
    with mock.patch('fcn_plugin.evaluation.logger_hook.is_main_process', return_value=False):
        hook.after_test_epoch(runner, {'mIoU': 50.0})
    assert not osp.exists(path) and logged == ['Iter(test) mIoU: 50.0']
    hook.after_test_epoch(runner, {'mIoU': 50.0})
    assert open(path).read().strip() == '{"mIoU": 50.0}'
