"""Only rank 0 writes the test metrics JSON (mmengine 0.10.7 writes it from every rank), in a
hook of its own name (importing fcn_plugin replaces nothing: tests/test_package_import.py)."""
import os.path as osp
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
