"""Checkpoint loading: mmengine checkpoints load with torch.load(weights_only=True) once
fcn_plugin is imported; hostile and truncated checkpoints are refused on every load path (the
payload never runs); importing fcn_plugin leaves mmengine's loaders as they are."""
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner import save_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

from fcn_plugin.utils.checkpoint_safety import (CorruptCheckpointError, UnsafeCheckpointError,
                                                install_safe_checkpoint_loaders)
from fcn_plugin.utils.io import load_weights_only
from fcn_plugin.utils.tool_errors import run_tool


def runner_like_checkpoint(path):
    """What mmengine 0.10.7's Runner.save_checkpoint writes (meta, hub, optimizer, schedulers)."""
    model = torch.nn.Conv2d(2, 2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.99)
    model(torch.randn(1, 2, 3, 3)).sum().backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)
    hub = MessageHub.get_instance('fcn_ckpt_test')
    for i in range(3):
        hub.update_scalar('train/loss', np.float64(1.5 / (i + 1)))
        hub.update_scalar('train/lr', 1e-10)
        hub.update_scalar('val/mIoU', np.float32(63.5))
    hub.update_info('iter', 3)
    hub.update_info('last_ckpt', 'work_dirs/x/iter_3.pth')
    meta = dict(
        epoch=0,
        iter=3,
        cfg='model = dict()',
        seed=np.int64(7),
        experiment_name='x',
        time='20261125_000000',
        mmengine_version='0.10.7',
        dataset_meta=dict(classes=('background', 'object'), palette=[[0, 0, 0], [128, 0, 0]]))
    save_checkpoint(
        dict(
            meta=meta,
            state_dict=model.state_dict(),
            message_hub=hub.state_dict(),
            optimizer=optimizer.state_dict(),
            param_schedulers=[scheduler.state_dict()]), str(path))


def test_mmengine_load_checkpoint_restores_history(tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint

    import fcn_plugin  # noqa: F401
    path = tmp_path / 'iter_3.pth'
    runner_like_checkpoint(path)
    ckpt = _load_checkpoint(str(path), map_location='cpu')
    hub = MessageHub.get_instance('fcn_ckpt_restored')
    hub.load_state_dict(ckpt['message_hub'])
    assert hub.get_scalar('train/loss').current() == 0.5
    assert ckpt['meta']['dataset_meta']['classes'] == ('background', 'object')


class _GetattrPayload:
    """Pickles as ``getattr(HistoryBuffer, '__init__')``: an attribute outside the allowlist."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return getattr, (HistoryBuffer, '__init__')


def test_getattr_stand_in_allows_only_statistics_methods(tmp_path):
    import pytest

    import fcn_plugin  # noqa: F401
    path = tmp_path / 'crafted.pth'
    torch.save({'x': _GetattrPayload()}, path)
    with pytest.raises(Exception, match='refused getattr'):
        torch.load(path, weights_only=True)


@pytest.fixture
def tool_loaders(monkeypatch):
    """mmengine's loaders as the tools install them (install_safe_checkpoint_loaders), for this
    test only."""
    monkeypatch.setattr(CheckpointLoader, '_schemes', dict(CheckpointLoader._schemes))
    install_safe_checkpoint_loaders()


def test_the_payload_is_real(hostile):
    """Control: loading it without weights_only runs the code (what everything else prevents)."""
    path, marker = hostile
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_mmengine_load_path_refuses(hostile):
    """resume, test, load_from, init_cfg Pretrained and init_model all end in _load_checkpoint:
    with the plugin only imported, torch's weights-only default refuses the file."""
    path, marker = hostile
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(path, map_location='cpu')
    assert not marker.exists()


@pytest.mark.usefixtures('tool_loaders')
def test_tool_loaders_refuse_with_a_clear_error(hostile):
    path, marker = hostile
    with pytest.raises(UnsafeCheckpointError) as info:
        _load_checkpoint(path, map_location='cpu')
    assert path in str(info.value) and 'would call exec,' in str(info.value)
    assert not marker.exists()


@pytest.mark.usefixtures('tool_loaders')
def test_tool_loaders_refuse_even_if_the_environment_turns_weights_only_off(hostile, monkeypatch):
    path, marker = hostile
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(UnsafeCheckpointError):
        _load_checkpoint(path, map_location='cpu')

    # a scheme whose loader calls torch.load without weights_only (as mmengine's http one)
    def load_from_fcntest(filename, map_location=None):
        return torch.load(filename[len('fcntest://'):], map_location=map_location)

    CheckpointLoader.register_scheme('fcntest://', load_from_fcntest)
    install_safe_checkpoint_loaders()
    with pytest.raises(UnsafeCheckpointError, match='fcntest://'):
        _load_checkpoint('fcntest://' + path, map_location='cpu')
    assert os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] == '1'  # restored afterwards
    assert not marker.exists()


def test_init_cfg_pretrained_refuses(hostile):
    from mmseg.registry import MODELS
    path, marker = hostile
    backbone = MODELS.build(
        dict(
            type='VGG',
            depth=11,
            base_channels=4,
            fc_channels=16,
            init_cfg=dict(type='Pretrained', checkpoint=path)))
    with pytest.raises(pickle.UnpicklingError):
        backbone.init_weights()
    assert not marker.exists()


def test_init_model_refuses(hostile, tmp_path, tiny_cfg):
    from mmseg.apis import init_model
    path, marker = hostile
    cfg = tiny_cfg(tmp_path / 'data', tmp_path / 'work')
    with pytest.raises(pickle.UnpicklingError):
        init_model(cfg, path, device='cpu')
    assert not marker.exists()


def test_runner_test_and_resume_refuse(hostile, tmp_path, make_voc, tiny_cfg, build_runner):
    path, marker = hostile
    make_voc(tmp_path / 'data', n_train=2, n_val=1)
    runner = build_runner(tiny_cfg(tmp_path / 'data', tmp_path / 'work', load_from=path))
    with pytest.raises(pickle.UnpicklingError):
        runner.test()
    (tmp_path / 'resume').mkdir()
    (tmp_path / 'resume' / 'last_checkpoint').write_text(path)
    runner = build_runner(tiny_cfg(tmp_path / 'data', tmp_path / 'resume', resume=True))
    with pytest.raises(pickle.UnpicklingError):
        runner.train()
    assert runner.iter == 0
    assert not marker.exists()


@pytest.mark.parametrize('tool', ['test', 'train --resume'])
def test_tools_refuse_even_if_the_environment_turns_weights_only_off(hostile, tmp_path, make_voc,
                                                                     tiny_cfg, load_tool, tool,
                                                                     monkeypatch, capsys):
    """tools/test.py CONFIG HOSTILE and tools/train.py --resume (last_checkpoint naming it)
    stop with UnsafeCheckpointError, with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 set (torch reads
    it at each load)."""
    path, marker = hostile
    make_voc(tmp_path / 'data', n_train=2, n_val=1)
    work = tmp_path / 'work'
    work.mkdir()
    config = tmp_path / 'tiny.py'
    tiny_cfg(tmp_path / 'data', work).dump(str(config))
    if tool == 'test':
        name, argv = 'test', [str(config), path]
    else:
        (work / 'last_checkpoint').write_text(path)
        name, argv = 'train', [str(config), '--resume']
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(SystemExit) as stop:
        run_tool(
            load_tool(name).main, f'tools/{name}.py',
            argv + ['--cfg-options', f'experiment_name=hostile_{name}'])
    stderr = capsys.readouterr().err
    assert stop.value.code == 1
    assert 'UnsafeCheckpointError' in stderr and path in stderr, stderr[-3000:]
    assert not marker.exists()


@pytest.mark.parametrize('converter', ['vgg2mmseg', 'torchfcn2mmseg'])
def test_converters_refuse(hostile, tmp_path, converter, load_tool, monkeypatch):
    """The converters' command lines (their main, in this process) refuse it too, with
    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 set (torch reads it at each load)."""
    path, marker = hostile
    out = tmp_path / 'converted.pth'
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(SystemExit) as stop:
        load_tool(f'model_converters/{converter}').main([path, str(out)])
    assert 'UnsafeCheckpointError' in str(stop.value.code) and path in str(stop.value.code)
    assert not marker.exists() and not out.exists()


def test_truncated_checkpoint_is_named(tmp_path):
    path = tmp_path / 'iter_4.pth'
    torch.save({'state_dict': {'w': torch.zeros(256)}}, path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match='VGG checkpoint .*iter_4.pth is truncated'):
        load_weights_only(str(path), 'VGG checkpoint')


@pytest.mark.usefixtures('tool_loaders')
def test_tool_loaders_name_a_truncated_checkpoint(tmp_path):
    path = tmp_path / 'iter_4.pth'
    torch.save({'state_dict': {'w': torch.zeros(256)}}, path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match='iter_4.pth is truncated'):
        _load_checkpoint(str(path), map_location='cpu')
