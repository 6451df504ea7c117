"""A NaN/inf loss stops training with a clear message and no NaN checkpoint."""
import os
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub

import fcn_plugin  # noqa: F401
from fcn_plugin.engine import DivergenceError, DivergenceHook


@pytest.mark.usefixtures('one_thread')
def test_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path, make_voc, tiny_cfg,
                                                                build_runner, state_dict_of):
    """lr 100 with the summed loss (the reference's lr is 1e-10): NaN at iteration 3."""
    make_voc(tmp_path / 'data', n_train=3, n_val=1)
    runner = build_runner(tiny_cfg(tmp_path / 'data', tmp_path / 'work', max_iters=8, lr=100.0,
                                   ckpt_interval=1, val_interval=100))
    with pytest.raises(DivergenceError) as info:
        runner.train()
    message = str(info.value)
    assert 'diverged at iteration 3: loss=nan' in message
    assert 'learning rate(s) 100/200' in message  # biases at 2x
    assert "loss reduction 'sum'" in message and 'lr 1e-10 (FCN-32s)' in message
    assert message.endswith('(this iteration was not saved); resume from it with --resume '
                            'after fixing the cause.')
    saved = sorted(n for n in os.listdir(tmp_path / 'work') if n.endswith('.pth'))
    assert saved == ['iter_1.pth', 'iter_2.pth']  # no checkpoint of the diverged iteration
    assert f"last good checkpoint is {tmp_path / 'work' / 'iter_2.pth'}" in message
    last = state_dict_of(tmp_path / 'work' / 'iter_2.pth')['state_dict']
    assert all(torch.isfinite(v).all() for v in last.values() if v.is_floating_point())


@pytest.mark.parametrize('value', [float('inf'), float('-inf'), float('nan')])
def test_hook_checks_every_loss_term(value):
    runner = SimpleNamespace(
        iter=41, optim_wrapper=None, message_hub=MessageHub.get_instance('divergence_test'),
        cfg=Config(dict(model=dict(decode_head=dict(loss_decode=dict(reduction='mean'))))))
    hook = DivergenceHook()
    hook.after_train_iter(runner, 0, outputs=dict(loss=torch.tensor(2.0), acc_seg=value))
    with pytest.raises(DivergenceError) as info:
        hook.after_train_iter(runner, 0, outputs=dict(
            loss=torch.tensor(1.0), **{'decode.loss_ce': torch.tensor(value)}))
    assert f'iteration 42: decode.loss_ce={value}' in str(info.value)
    assert "loss reduction 'mean'" in str(info.value)
    assert 'No checkpoint was written' in str(info.value)
