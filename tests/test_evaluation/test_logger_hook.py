"""Only rank 0 writes the test metrics JSON (mmengine 0.10.7 writes it from every rank), in a
hook of its own name (importing fcn_plugin replaces nothing: tests/test_package_import.py); a
log line, scalar or JSON that cannot be written (disk full) is reported once and the run goes
on."""
import errno
import logging
import os
import os.path as osp
import uuid
from types import SimpleNamespace
from unittest import mock

import pytest
from mmengine.hooks import LoggerHook
from mmseg.registry import HOOKS

from fcn_plugin.evaluation import RankZeroLoggerHook, logger_hook


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


# -------------------------------------------------------- logs never stop a run (disk full...)
def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FullDisk:
    """A log file's stream on a full disk."""

    def write(self, text):
        no_space()

    def flush(self):
        no_space()

    def close(self):
        pass


@pytest.fixture
def warned(monkeypatch):
    messages = []
    monkeypatch.setattr(logger_hook, 'print_log', lambda msg, **kw: messages.append(msg))
    return messages


@pytest.mark.usefixtures('one_thread')
def test_a_full_disk_loses_scalars_and_log_lines_not_the_run(tmp_path, make_voc, tiny_cfg,
                                                             build_runner, monkeypatch, warned,
                                                             capsys):
    from mmengine.visualization import LocalVisBackend
    make_voc(tmp_path / 'voc', n_train=2, n_val=1)
    cfg = tiny_cfg(
        tmp_path / 'voc',
        tmp_path / 'work',
        max_iters=3,
        val_interval=2,
        ckpt_interval=3,
        visualizer=dict(
            type='SegLocalVisualizer',
            vis_backends=[dict(type='LocalVisBackend')],
            name=f'vis_{uuid.uuid4().hex[:8]}'))
    with monkeypatch.context() as opening:  # every write to the text log file fails
        opening.setattr(logging.FileHandler, '_open', lambda handler: FullDisk())
        runner = build_runner(cfg)
    log_file = next(h for h in runner.logger.handlers if isinstance(h, logging.FileHandler))
    monkeypatch.setattr(LocalVisBackend, '_dump', no_space)  # scalars.json, <timestamp>.json
    console = []
    handler = logging.Handler()
    handler.emit = console.append
    runner.logger.addHandler(handler)
    try:
        runner.train()  # 3 iterations, a validation at 2: scalars every iteration
    finally:
        runner.logger.removeHandler(handler)
    assert runner.iter == 3 and osp.isfile(tmp_path / 'work' / 'iter_3.pth')
    scalars = [m for m in warned if 'could not write the scalars of the LocalVisBackend' in m]
    assert len(scalars) == 1 and 'No space left on device' in scalars[0]
    assert 'vis_data/scalars.json' in scalars[0] and 'vis_data/20' in scalars[0]  # the files
    assert '[Errno 28]' in scalars[0] and 'The run goes on' in scalars[0]
    text = [r.getMessage() for r in console if 'could not write the log file' in r.getMessage()]
    assert len(text) == 1 and log_file.baseFilename in text[0]
    assert 'Logging error' not in capsys.readouterr().err  # no traceback per line


def test_the_test_json_is_reported_once_when_it_cannot_be_written(tmp_path, monkeypatch, warned):
    from mmengine.hooks import logger_hook as mmengine_logger_hook
    monkeypatch.setattr(mmengine_logger_hook, 'dump', no_space)
    hook = RankZeroLoggerHook()
    hook.json_log_path = '20261125_000000.json'
    runner, logged = fake_runner(tmp_path)
    hook.after_test_epoch(runner, {'mIoU': 50.0})
    hook.after_test_epoch(runner, {'mIoU': 50.0})
    assert logged == ['Iter(test) mIoU: 50.0'] * 2  # the metrics are still logged
    assert len(warned) == 1 and osp.join(str(tmp_path), hook.json_log_path) in warned[0]
