"""LoadPolicyHook: what a run loads. --resume continues the newest complete checkpoint where the
checkpoint hook writes them (its out_dir, its filename_tmpl), also in a stage whose config sets
load_from (FCN-16s from FCN-32s), whoever builds the runner; a changed lr wins on --resume."""
import os
import shutil
import time
from types import SimpleNamespace
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.runner import BaseLoop
from mmseg.registry import HOOKS

from fcn_plugin.runtime import LoadPolicyHook, find_newest_complete_checkpoint
from fcn_plugin.runtime.checkpoint_files import resume_target
from fcn_plugin.runtime.load_policy import saved_lr, scale_saved_lr


@pytest.fixture
def stage_init(tmp_path):
    """The previous stage's final checkpoint, as a staged config's load_from names it."""
    path = tmp_path / 'fcn32s' / 'iter_100000.pth'
    path.parent.mkdir()
    torch.save({'state_dict': {}}, path)
    return str(path)


def settle(work_dir, resume=True, load_from=None, training=True):
    """(resume, load_from) after LoadPolicyHook.before_run on a runner of ``work_dir``."""
    runner = SimpleNamespace(
        work_dir=str(work_dir),
        log_dir=str(work_dir / 'this_run'),
        hooks=[],
        model=torch.nn.Linear(1, 1),
        _resume=resume,
        _load_from=load_from,
        _train_loop=mock.Mock(spec=BaseLoop, iter=0, max_iters=10) if training else dict(),
        cfg=Config(),
        message_hub=MessageHub.get_instance('load_policy_test'))
    LoadPolicyHook().before_run(runner)
    return runner._resume, runner._load_from


def test_resume_continues_own_checkpoints_not_the_previous_stage(tmp_path, stage_init):
    write_checkpoint(tmp_path / 'iter_8000.pth', time.time())
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_8000.pth'))
    assert settle(tmp_path, load_from=stage_init) == (True, str(tmp_path / 'iter_8000.pth'))


def test_resume_without_checkpoints_starts_the_stage_from_load_from(tmp_path, stage_init):
    assert settle(tmp_path, load_from=stage_init) == (False, stage_init)


@pytest.mark.parametrize(
    'resume,training', [(False, True), (True, False)], ids=['no-resume', 'testing'])
def test_load_from_kept_without_resume_or_when_testing(tmp_path, stage_init, resume, training):
    (tmp_path / 'last_checkpoint').write_text('x')
    assert settle(tmp_path, resume, stage_init, training) == (resume, stage_init)


def write_checkpoint(path, mtime, complete=True):
    torch.save({'state_dict': {'w': torch.zeros(64)}}, path)
    if not complete:
        data = open(path, 'rb').read()
        with open(path, 'wb') as f:
            f.write(data[:len(data) // 2])
    os.utime(path, (mtime, mtime))


def resume_from(work_dir, tmpl='iter_{}.pth'):
    return os.path.basename(resume_target(str(work_dir), str(work_dir), tmpl))


def test_resume_takes_the_highest_complete_checkpoint(tmp_path):
    now = time.time()
    write_checkpoint(tmp_path / 'iter_2.pth', now - 30)
    write_checkpoint(tmp_path / 'iter_4.pth', now - 20)
    write_checkpoint(tmp_path / 'iter_6.pth', now - 10, complete=False)
    assert find_newest_complete_checkpoint(str(tmp_path)).endswith('iter_4.pth')
    # no last_checkpoint at all
    assert resume_from(tmp_path) == 'iter_4.pth'
    # last_checkpoint names a truncated file (written by a plain mmengine run, say)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_6.pth'))
    assert resume_from(tmp_path) == 'iter_4.pth'
    # killed after the rename but before last_checkpoint was updated: the higher file wins
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    assert resume_from(tmp_path) == 'iter_4.pth'
    # an empty last_checkpoint (killed while writing it), or one holding binary bytes
    for content in (b'', b'\xff\xfe\x00\x81garbage'):
        (tmp_path / 'last_checkpoint').write_bytes(content)
        assert resume_from(tmp_path) == 'iter_4.pth'
    # the hook points the run at it and repairs last_checkpoint, atomically
    assert settle(tmp_path) == (True, str(tmp_path / 'iter_4.pth'))
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'iter_4.pth')
    assert not [n for n in os.listdir(tmp_path) if n.startswith('.')]
    # a name without a number, set by hand, is trusted
    write_checkpoint(tmp_path / 'mine.pth', now - 100)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'mine.pth'))
    assert resume_from(tmp_path) == 'mine.pth'


def test_a_copied_older_checkpoint_does_not_win(tmp_path):
    """By iteration, not modification time: iter_2.pth copied back (restored from a backup,
    say) is newer on disk than iter_4.pth but not where the run stopped, also when
    last_checkpoint names it."""
    now = time.time()
    write_checkpoint(tmp_path / 'iter_4.pth', now - 20)
    write_checkpoint(tmp_path / 'iter_2.pth', now)
    assert find_newest_complete_checkpoint(str(tmp_path)).endswith('iter_4.pth')
    assert resume_from(tmp_path) == 'iter_4.pth'
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    assert resume_from(tmp_path) == 'iter_4.pth'
    epochs = tmp_path / 'epochs'  # epoch-based names alike, by N (20 > 12 > 3, not as text)
    epochs.mkdir()
    for n, age in ((3, 0), (12, 50), (20, 40)):
        write_checkpoint(epochs / f'epoch_{n}.pth', now - age)
    assert resume_from(epochs, 'epoch_{}.pth') == 'epoch_20.pth'


def test_resume_without_any_complete_checkpoint_fails_clearly(tmp_path):
    write_checkpoint(tmp_path / 'iter_2.pth', time.time(), complete=False)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    with pytest.raises(FileNotFoundError, match='no other complete checkpoint'):
        resume_from(tmp_path)


@HOOKS.register_module(force=True)
class _RecordStart(Hook):
    """Records the iteration training starts at and the weights it starts from."""
    starts = []

    def before_train(self, runner):
        weight = runner.model.backbone.conv1_1.weight
        _RecordStart.starts.append((runner.iter, weight.detach().clone()))


@pytest.mark.usefixtures('one_thread')
def test_runner_from_cfg_resumes_the_work_dir_not_load_from(tmp_path, make_voc, tiny_cfg,
                                                            build_runner):
    """mmseg's tools/train.py flow (Runner.from_cfg, resume=True, runner.train()) in a stage
    whose config sets load_from to the previous stage's final checkpoint: with iter_2.pth in
    the work dir (an interrupted run) it continues from iteration 2 and its weights; with an
    empty work dir it starts at 0 from load_from's weights. mmengine alone would resume from
    load_from (iteration 4) both times."""
    make_voc(tmp_path / 'data', n_train=2, n_val=1)
    previous = tmp_path / 'previous'
    build_runner(
        tiny_cfg(
            tmp_path / 'data', previous, max_iters=4, ckpt_interval=2, val_interval=100,
            lr=1e-5)).train()
    stage = dict(
        max_iters=6,
        ckpt_interval=100,
        val_interval=100,
        lr=1e-5,
        resume=True,
        load_from=str(previous / 'iter_4.pth'),
        custom_hooks=[dict(type='_RecordStart')])
    interrupted = tmp_path / 'interrupted'
    interrupted.mkdir()
    shutil.copy(previous / 'iter_2.pth', interrupted)  # no last_checkpoint: repaired too
    fresh = tmp_path / 'fresh'
    _RecordStart.starts.clear()
    for work_dir in (interrupted, fresh):
        assert build_runner(tiny_cfg(tmp_path / 'data', work_dir, **stage)).train() is not None
    key = 'backbone.conv1_1.weight'
    (start_it, start_w), (fresh_it, fresh_w) = _RecordStart.starts
    assert start_it == 2 and torch.equal(
        start_w,
        torch.load(previous / 'iter_2.pth', weights_only=True)['state_dict'][key])
    assert fresh_it == 0 and torch.equal(
        fresh_w,
        torch.load(previous / 'iter_4.pth', weights_only=True)['state_dict'][key])


@pytest.mark.usefixtures('one_thread')
def test_resume_finds_checkpoints_where_the_hook_writes_them(tmp_path, make_voc, tiny_cfg,
                                                             build_runner, monkeypatch):
    """A checkpoint hook with its own out_dir and filename_tmpl, and no last_checkpoint (lost,
    or a run killed before its first one was written): --resume continues ckpt_4.pth in
    out_dir/<work dir name>, and ckpt_2/ckpt_4 are not overwritten by a run restarted at 0.
    Where there is no checkpoint but earlier runs' logs, it says so before starting at 0."""
    make_voc(tmp_path / 'data', n_train=2, n_val=1)
    work, out = tmp_path / 'work', tmp_path / 'store'
    hooks = dict(checkpoint=dict(interval=2, out_dir=str(out), filename_tmpl='ckpt_{}.pth'))
    common = dict(max_iters=4, val_interval=100, lr=1e-5, default_hooks=hooks)
    build_runner(tiny_cfg(tmp_path / 'data', work, **common)).train()
    folder = out / 'work'
    assert sorted(os.listdir(folder)) == ['ckpt_2.pth', 'ckpt_4.pth']
    written = {n: (folder / n).stat().st_mtime_ns for n in os.listdir(folder)}
    os.remove(work / 'last_checkpoint')
    _RecordStart.starts.clear()
    runner = build_runner(
        tiny_cfg(
            tmp_path / 'data',
            work,
            resume=True,
            custom_hooks=[dict(type='_RecordStart')],
            **dict(common, max_iters=6)))
    runner.train()
    assert [it for it, _ in _RecordStart.starts] == [4]
    assert all((folder / n).stat().st_mtime_ns == t for n, t in written.items())

    for name in ('ckpt_2.pth', 'ckpt_4.pth', 'ckpt_6.pth'):
        os.remove(folder / name)
    os.remove(work / 'last_checkpoint')
    # the runs above may share this run's timestamp folder (within one second): one more log
    # folder of an earlier run, as a day-old run leaves it
    (work / '20261204_120000').mkdir()
    (work / '20261204_120000' / '20261204_120000.log').write_text('an earlier run\n')
    import fcn_plugin.runtime.load_policy as load_policy
    messages = []
    monkeypatch.setattr(load_policy, 'print_log', lambda msg, *a, **k: messages.append(msg))
    runner = build_runner(tiny_cfg(tmp_path / 'data', work, resume=True, **common))
    runner.train()
    assert runner.iter == 4 and os.path.isfile(folder / 'ckpt_4.pth')
    assert any(f'found no checkpoint (ckpt_N.pth) in {folder}' in m and 'earlier run(s)' in m
               for m in messages), messages


def test_saved_lr_is_read_without_running_the_text():
    text = ("import os\nos.remove('x')\noptim_wrapper = dict(\n    type='OptimWrapper',\n"
            "    optimizer=dict(lr=1e-10, momentum=0.99, type='SGD'))\n")
    assert saved_lr(text) == 1e-10
    assert saved_lr("optim_wrapper = {'optimizer': {'lr': 0.5}}") == 0.5
    assert saved_lr('optim_wrapper = dict(type=1') is None and saved_lr(None) is None


def test_scale_saved_lr_keeps_multipliers_and_schedule():
    ckpt = dict(
        optimizer=dict(
            state={}, param_groups=[dict(lr=0.5, initial_lr=1.0),
                                    dict(lr=1.0, initial_lr=2.0)]),
        param_schedulers=[
            dict(param_name='lr', base_values=[1.0, 2.0], _last_value=[0.5, 1.0]),
            dict(param_name='momentum', base_values=[0.9])
        ])
    assert scale_saved_lr(ckpt, 0.1) == 2
    assert [g[k] for g in ckpt['optimizer']['param_groups'] for k in ('lr', 'initial_lr')] == \
        pytest.approx([0.05, 0.1, 0.1, 0.2])
    assert ckpt['param_schedulers'][0]['base_values'] == pytest.approx([0.1, 0.2])
    assert ckpt['param_schedulers'][0]['_last_value'] == pytest.approx([0.05, 0.1])
    assert ckpt['param_schedulers'][1]['base_values'] == [0.9]
    # an unchanged lr leaves a resumed checkpoint alone
    runner = SimpleNamespace(cfg=Config(dict(optim_wrapper=dict(optimizer=dict(lr=1e-3)))))
    same = dict(
        meta=dict(cfg='optim_wrapper = dict(optimizer=dict(lr=0.001))'),
        optimizer=dict(param_groups=[dict(lr=7.0)]))
    hook = LoadPolicyHook()
    hook.source, hook.resuming = 'iter_4.pth', True
    hook.after_load_checkpoint(runner, same)
    assert same['optimizer']['param_groups'][0]['lr'] == 7.0
