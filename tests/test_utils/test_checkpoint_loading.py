"""mmengine checkpoints load with torch.load(weights_only=True) once fcn_plugin is imported."""
import subprocess
import sys

import numpy as np
import torch
from mmengine.logging import MessageHub
from mmengine.runner import save_checkpoint


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
    meta = dict(epoch=0, iter=3, cfg='model = dict()', seed=np.int64(7), experiment_name='x',
                time='20261125_000000', mmengine_version='0.10.7',
                dataset_meta=dict(classes=('background', 'object'), palette=[[0, 0, 0],
                                                                             [128, 0, 0]]))
    save_checkpoint(dict(meta=meta, state_dict=model.state_dict(), message_hub=hub.state_dict(),
                         optimizer=optimizer.state_dict(),
                         param_schedulers=[scheduler.state_dict()]), str(path))


LOAD = 'import torch, sys; {imp}; torch.load(sys.argv[1], weights_only=True); print("loaded")'


def try_load(path, with_plugin):
    code = LOAD.format(imp='import fcn_plugin' if with_plugin else 'pass')
    return subprocess.run([sys.executable, '-c', code, str(path)], capture_output=True,
                          text=True)


def test_runner_checkpoint_needs_and_gets_the_allowlist(tmp_path):
    path = tmp_path / 'iter_3.pth'
    runner_like_checkpoint(path)
    assert 'loaded' not in try_load(path, with_plugin=False).stdout  # torch alone refuses it
    result = try_load(path, with_plugin=True)
    assert result.stdout.strip() == 'loaded', result.stderr


def test_mmengine_load_checkpoint_restores_history(tmp_path):
    import fcn_plugin  # noqa: F401
    from mmengine.runner.checkpoint import _load_checkpoint
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
