"""A NaN/inf loss or weight stops training with a clear message, no NaN checkpoint is written,
and the advised command resumes the last finite checkpoint at the lower learning rate."""
import os
import re
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmseg.registry import HOOKS

import fcn_plugin  # noqa: F401
from fcn_plugin.runtime import DivergenceError, DivergenceHook
from fcn_plugin.runtime.runs import LOCK_NAME


@pytest.mark.usefixtures('one_thread')
def test_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path, make_voc, tiny_cfg,
                                                                build_runner, state_dict_of):
    """lr 100 with the summed loss (the reference's lr is 1e-10): NaN at iteration 3."""
    make_voc(tmp_path / 'data', n_train=3, n_val=1)
    runner = build_runner(
        tiny_cfg(
            tmp_path / 'data',
            tmp_path / 'work',
            max_iters=8,
            lr=100.0,
            ckpt_interval=1,
            val_interval=100))
    with pytest.raises(DivergenceError) as info:
        runner.train()
    message = str(info.value)
    assert 'diverged at iteration 3: loss=nan' in message
    assert 'learning rate(s) 100/200' in message  # biases at 2x
    assert "loss reduction 'sum'" in message and 'lr 1e-10 (FCN-32s)' in message
    assert message.endswith('--resume --cfg-options optim_wrapper.optimizer.lr=10')
    saved = sorted(n for n in os.listdir(tmp_path / 'work') if n.endswith('.pth'))
    assert saved == ['iter_1.pth', 'iter_2.pth']  # no checkpoint of the diverged iteration
    assert f"last checkpoint verified finite is {tmp_path / 'work' / 'iter_2.pth'}" in message
    last = state_dict_of(tmp_path / 'work' / 'iter_2.pth')['state_dict']
    assert all(torch.isfinite(v).all() for v in last.values() if v.is_floating_point())


@pytest.mark.parametrize('value', [float('inf'), float('-inf'), float('nan')])
def test_hook_checks_every_loss_term(value, tmp_path):
    runner = SimpleNamespace(
        iter=41,
        work_dir=str(tmp_path),
        hooks=[],
        optim_wrapper=None,
        message_hub=MessageHub.get_instance('divergence_test'),
        cfg=Config(dict(model=dict(decode_head=dict(loss_decode=dict(reduction='mean'))))))
    hook = DivergenceHook(check_interval=0)  # the runner has no model
    hook.after_train_iter(runner, 0, outputs=dict(loss=torch.tensor(2.0), acc_seg=value))
    with pytest.raises(DivergenceError) as info:
        hook.after_train_iter(
            runner,
            0,
            outputs=dict(loss=torch.tensor(1.0), **{'decode.loss_ce': torch.tensor(value)}))
    assert f'iteration 42: decode.loss_ce={value}' in str(info.value)
    assert "loss reduction 'mean'" in str(info.value)
    assert 'No checkpoint verified finite was written' in str(info.value)


def _finite(path, state_dict_of):
    """Every floating tensor of a checkpoint's weights and optimizer state is finite."""
    ckpt = state_dict_of(path)
    tensors = list(ckpt['state_dict'].values())
    for state in ckpt['optimizer']['state'].values():
        tensors += [v for v in state.values() if isinstance(v, torch.Tensor)]
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


@pytest.mark.usefixtures('one_thread')
def test_huge_lr_keeps_only_finite_checkpoints(tmp_path, make_voc, tiny_cfg, build_runner,
                                               state_dict_of):
    """lr 1e30: the first update already gives ~1e33 weights, the next loss is NaN."""
    make_voc(tmp_path / 'data', n_train=3, n_val=1)
    work = tmp_path / 'work'
    runner = build_runner(
        tiny_cfg(tmp_path / 'data', work, max_iters=6, lr=1e30, ckpt_interval=1, val_interval=100))
    with pytest.raises(DivergenceError) as info:
        runner.train()
    message = str(info.value)
    saved = sorted(n for n in os.listdir(work) if n.endswith('.pth'))
    assert saved and all(_finite(work / n, state_dict_of) for n in saved)
    last = work / saved[-1]
    assert (work / 'last_checkpoint').read_text() == str(last)
    assert f'last checkpoint verified finite is {last} ' in message
    assert 'Its weights gave this NaN/inf loss' in message  # saved just before the NaN loss
    assert message.endswith('--resume --cfg-options optim_wrapper.optimizer.lr=1e+29')


@HOOKS.register_module(force=True)
class _DivergenceFault(Hook):
    """Test fault: at iteration ``at`` (1-based) the lr is inf for that update only (the weights
    become inf), or the optimizer's momentum buffers become inf after it."""
    priority = 'HIGHEST'

    def __init__(self, at, kind):
        self.at, self.kind = at, kind

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.kind == 'lr' and runner.iter + 1 == self.at:
            for group in runner.optim_wrapper.optimizer.param_groups:
                group['saved_lr'], group['lr'] = group['lr'], float('inf')

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        for group in runner.optim_wrapper.optimizer.param_groups:
            group['lr'] = group.pop('saved_lr', group['lr'])
        if self.kind == 'momentum' and runner.iter + 1 == self.at:
            for state in runner.optim_wrapper.optimizer.state.values():
                state['momentum_buffer'].fill_(float('inf'))


@HOOKS.register_module(force=True)
class _RecordLr(Hook):

    def __init__(self):
        self.seen = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        lrs = sorted({g['lr'] for g in runner.optim_wrapper.optimizer.param_groups})
        self.seen.append((runner.iter, lrs, float(outputs['loss'])))


@pytest.mark.usefixtures('one_thread')
def test_nonfinite_optimizer_state_is_not_saved(tmp_path, make_voc, tiny_cfg, build_runner,
                                                state_dict_of):
    """Finite weights, inf momentum at a save (AtomicCheckpointHook checks what it writes):
    nothing written, last_checkpoint unchanged."""
    make_voc(tmp_path / 'data', n_train=3, n_val=1)
    work = tmp_path / 'work'
    runner = build_runner(
        tiny_cfg(
            tmp_path / 'data',
            work,
            max_iters=6,
            ckpt_interval=2,
            val_interval=100,
            custom_hooks=[dict(type='_DivergenceFault', at=4, kind='momentum')]))
    with pytest.raises(DivergenceError) as info:
        runner.train()
    message = str(info.value)
    assert 'iteration 4: the checkpoint to be saved was not written: 26 of ' in message
    assert 'optimizer.state.0.momentum_buffer' in message
    # no iter_4.pth, no temporary file (the run's lock is held until its process ends)
    assert sorted(os.listdir(work)) == sorted(
        ['iter_2.pth', 'last_checkpoint', 'fcn_runtime.py', runner.timestamp, LOCK_NAME])
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')
    assert f"verified finite is {work / 'iter_2.pth'} " in message
    assert _finite(work / 'iter_2.pth', state_dict_of)


@pytest.mark.usefixtures('one_thread')
def test_advised_command_resumes_at_the_lower_lr(tmp_path, make_voc, tiny_cfg, build_runner):
    """An inf lr at iteration 3 makes weights inf: stopped at once; the advised
    ``--resume --cfg-options optim_wrapper.optimizer.lr=...`` continues iter_2.pth at that lr."""
    make_voc(tmp_path / 'data', n_train=3, n_val=1)
    work = tmp_path / 'work'
    runner = build_runner(
        tiny_cfg(
            tmp_path / 'data',
            work,
            max_iters=6,
            ckpt_interval=2,
            val_interval=100,
            custom_hooks=[dict(type='_DivergenceFault', at=3, kind='lr')]))
    with pytest.raises(DivergenceError) as info:
        runner.train()
    message = str(info.value)
    assert 'diverged at iteration 3: after its update, ' in message
    assert 'parameter tensors hold NaN/inf (backbone.conv1_1.weight' in message
    assert f"verified finite is {work / 'iter_2.pth'} " in message
    key, value = re.search(r'--resume --cfg-options (\S+)=(\S+)$', message).groups()
    assert (key, float(value)) == ('optim_wrapper.optimizer.lr', 1e-4)  # tiny_cfg's 1e-3 / 10

    cfg = tiny_cfg(
        tmp_path / 'data',
        work,
        max_iters=6,
        ckpt_interval=2,
        val_interval=100,
        custom_hooks=[dict(type='_RecordLr')],
        resume=True)
    cfg.merge_from_dict({key: float(value)})  # what --cfg-options does
    resumed = build_runner(cfg)
    record = next(h for h in resumed.hooks if isinstance(h, _RecordLr))
    resumed.train()
    assert [it for it, _, _ in record.seen] == [2, 3, 4, 5]  # continued after iter_2.pth
    assert all(lrs == [1e-4, 2e-4] for _, lrs, _ in record.seen)  # biases at 2x
    assert all(torch.isfinite(torch.tensor(loss)) for _, _, loss in record.seen)
    assert os.path.isfile(work / 'iter_6.pth')
