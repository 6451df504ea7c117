"""ResumeHook: --resume continues the work dir's own newest complete checkpoint, also in a stage
whose config sets load_from (FCN-16s from FCN-32s), and whoever builds the runner (mmseg's
tools/train.py, mim train, ours)."""
import os
import os.path as osp
import shutil
import time
from types import SimpleNamespace
from unittest import mock

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import BaseLoop
from mmseg.registry import HOOKS

from fcn_plugin.engine import ResumeHook, find_newest_complete_checkpoint

STAGE_INIT = 'work_dirs/fcn32s/iter_100000.pth'


def fake_runner(work_dir, resume=True, load_from=None, training=True):
    """What ResumeHook reads and sets of a runner (``_train_loop`` is built when training)."""
    return SimpleNamespace(work_dir=str(work_dir), _resume=resume, _load_from=load_from,
                           _train_loop=mock.Mock(spec=BaseLoop) if training else dict())


def test_resume_continues_own_checkpoints_not_the_previous_stage(tmp_path):
    write_checkpoint(tmp_path / 'iter_8000.pth', time.time())
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_8000.pth'))
    runner = fake_runner(tmp_path, load_from=STAGE_INIT)
    ResumeHook().before_run(runner)
    assert runner._resume and runner._load_from is None  # mmengine resumes last_checkpoint


def test_resume_without_checkpoints_starts_the_stage_from_load_from(tmp_path):
    runner = fake_runner(tmp_path, load_from=STAGE_INIT)
    ResumeHook().before_run(runner)
    assert not runner._resume and runner._load_from == STAGE_INIT


@pytest.mark.parametrize('resume,training', [(False, True), (True, False)],
                         ids=['no-resume', 'testing'])
def test_load_from_kept_without_resume_or_when_testing(tmp_path, resume, training):
    (tmp_path / 'last_checkpoint').write_text('x')
    runner = fake_runner(tmp_path, resume=resume, load_from=STAGE_INIT, training=training)
    ResumeHook().before_run(runner)
    assert (runner._resume, runner._load_from) == (resume, STAGE_INIT)


def write_checkpoint(path, mtime, complete=True):
    torch.save({'state_dict': {'w': torch.zeros(64)}}, path)
    if not complete:
        data = open(path, 'rb').read()
        with open(path, 'wb') as f:
            f.write(data[:len(data) // 2])
    os.utime(path, (mtime, mtime))


def resume_from(work_dir):
    ResumeHook().before_run(fake_runner(work_dir))
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return osp.basename(f.read().strip())


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
    # an empty last_checkpoint (killed while writing it)
    (tmp_path / 'last_checkpoint').write_text('')
    assert resume_from(tmp_path) == 'iter_4.pth'
    # a name without a number, set by hand, is trusted
    write_checkpoint(tmp_path / 'mine.pth', now - 100)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'mine.pth'))
    assert resume_from(tmp_path) == 'mine.pth'
    assert not [n for n in os.listdir(tmp_path) if n.startswith('.')]  # written atomically


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
    assert resume_from(epochs) == 'epoch_20.pth'


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
    build_runner(tiny_cfg(tmp_path / 'data', previous, max_iters=4, ckpt_interval=2,
                          val_interval=100, lr=1e-5)).train()
    stage = dict(max_iters=6, ckpt_interval=100, val_interval=100, lr=1e-5, resume=True,
                 load_from=str(previous / 'iter_4.pth'), custom_hooks=[dict(type='_RecordStart')])
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
        start_w, torch.load(previous / 'iter_2.pth', weights_only=True)['state_dict'][key])
    assert fresh_it == 0 and torch.equal(
        fresh_w, torch.load(previous / 'iter_4.pth', weights_only=True)['state_dict'][key])
