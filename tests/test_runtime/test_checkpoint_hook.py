"""AtomicCheckpointHook: checkpoints and last_checkpoint are complete or absent, old ones are
deleted only after the new one is complete, a surplus one (a kill between the rename and the
deletion) goes at the next start or save, a failed save (disk full, a check that raises) loses
nothing; every config selects it (and the other plugin hooks). A kill during a save:
tests/test_engine/test_exact_resume.py."""
import errno
import glob
import os
import os.path as osp
import shutil
import uuid
from types import SimpleNamespace

import pytest
import torch
from mmengine.hooks import CheckpointHook
from mmengine.logging import MessageHub, MMLogger

from fcn_plugin.runtime import AtomicCheckpointHook, is_complete_checkpoint


def fake_runner(work_dir):
    """What CheckpointHook uses of a runner; ``saves`` records, for each save_checkpoint call,
    the file name written, the checkpoints on disk then and what last_checkpoint named.
    Setting ``runner.fail`` to an exception makes the next save write half its file (1.2 MB
    each) and raise it."""
    saves = []

    def save_checkpoint(out_dir, filename, file_client_args=None, **kwargs):
        last = osp.join(work_dir, 'last_checkpoint')
        saves.append(
            SimpleNamespace(
                name=filename,
                on_disk=checkpoints(out_dir),
                last=open(last).read() if osp.exists(last) else None))
        path = osp.join(out_dir, filename)
        torch.save({'meta': kwargs.get('meta'), 'w': torch.zeros(300_000)}, path)
        if runner.fail is not None:
            with open(path, 'r+b') as f:
                f.truncate(osp.getsize(path) // 2)
            raise runner.fail

    name = f'atomic_{uuid.uuid4().hex[:8]}'
    runner = SimpleNamespace(
        work_dir=str(work_dir),
        logger=MMLogger.get_instance(name, log_level='WARNING'),
        message_hub=MessageHub.get_instance(name),
        epoch=0,
        iter=0,
        max_iters=100,
        save_checkpoint=save_checkpoint,
        saves=saves,
        fail=None)
    return runner


def checkpoints(folder):
    return sorted(n for n in os.listdir(folder) if n.endswith('.pth') and not n.startswith('.'))


def test_it_is_mmengines_checkpoint_hook_with_its_arguments():
    hook = AtomicCheckpointHook(interval=3, by_epoch=False, max_keep_ckpts=2)
    assert isinstance(hook, CheckpointHook)
    assert (hook.interval, hook.by_epoch, hook.max_keep_ckpts) == (3, False, 2)


def test_old_checkpoint_deleted_only_after_the_new_one_and_last_checkpoint(tmp_path):
    """max_keep_ckpts=1: while iter_4 is written (to a hidden temporary file), iter_2 is still
    there and last_checkpoint still names it; afterwards only the complete iter_4 remains."""
    runner = fake_runner(tmp_path)
    hook = AtomicCheckpointHook(interval=2, by_epoch=False, max_keep_ckpts=1)
    hook.before_train(runner)
    for runner.iter in range(4):
        hook.after_train_iter(runner, runner.iter)
    first, second = runner.saves
    assert first.name.startswith('.iter_2.pth.tmp-') and first.last is None
    assert second.name.startswith('.iter_4.pth.tmp-')
    assert second.on_disk == ['iter_2.pth'] and second.last == str(tmp_path / 'iter_2.pth')
    assert checkpoints(tmp_path) == ['iter_4.pth']
    assert is_complete_checkpoint(str(tmp_path / 'iter_4.pth'))
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'iter_4.pth')
    assert not glob.glob(str(tmp_path / '.*'))  # no temporary file left


def test_previous_best_deleted_only_after_the_new_best(tmp_path):
    runner = fake_runner(tmp_path)
    hook = AtomicCheckpointHook(interval=100, by_epoch=False, save_best='mIoU', rule='greater')
    hook.before_train(runner)
    runner.iter = 2
    hook.after_val_epoch(runner, {'mIoU': 0.5})
    runner.iter = 4
    hook.after_val_epoch(runner, {'mIoU': 0.4})  # not better: nothing written
    runner.iter = 6
    hook.after_val_epoch(runner, {'mIoU': 0.6})
    assert [s.name.split('.tmp-')[0]
            for s in runner.saves] == ['.best_mIoU_iter_2.pth', '.best_mIoU_iter_6.pth']
    assert runner.saves[1].on_disk == ['best_mIoU_iter_2.pth']
    assert checkpoints(tmp_path) == ['best_mIoU_iter_6.pth']
    assert runner.message_hub.get_info('best_ckpt') == str(tmp_path / 'best_mIoU_iter_6.pth')


def test_stale_temporary_files_are_removed_at_the_start(tmp_path):
    (tmp_path / '.iter_4.pth.tmp-k1ll3d.pth').write_bytes(b'PK half')
    (tmp_path / '.last_checkpoint.tmp-k1ll3d').write_text('half')
    (tmp_path / 'iter_2.pth').write_bytes(b'kept')
    (tmp_path / 'notes.tmp-1.txt').write_text('not ours: not hidden')
    AtomicCheckpointHook(interval=2, by_epoch=False).before_train(fake_runner(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ['iter_2.pth', 'notes.tmp-1.txt']


def write_complete(path):
    torch.save({'w': torch.zeros(4)}, path)


def resumed_at(tmp_path, step, keep_ckpt_ids, max_keep_ckpts=2):
    """A fake runner resumed at ``step`` (mmengine restores keep_ckpt_ids from the checkpoint
    into the message hub before before_train) and its hook."""
    runner = fake_runner(tmp_path)
    runner.iter = step
    runner.message_hub.update_info('keep_ckpt_ids', list(keep_ckpt_ids))
    return runner, AtomicCheckpointHook(interval=2, by_epoch=False, max_keep_ckpts=max_keep_ckpts)


def test_surplus_checkpoint_removed_at_the_start(tmp_path):
    """Killed after renaming iter_6.pth, before deleting iter_2.pth (max_keep_ckpts=2): iter_6
    records keep_ckpt_ids [4, 6], so mmengine would never delete iter_2. At the start it goes,
    and so does a truncated iter_1.pth; a non-zip (legacy) file, another run's higher-numbered
    iter_10.pth and other names stay."""
    for n in (2, 4, 6, 10):
        write_complete(tmp_path / f'iter_{n}.pth')
    torch.save({'w': torch.zeros(64)}, tmp_path / 'iter_1.pth')
    data = (tmp_path / 'iter_1.pth').read_bytes()
    (tmp_path / 'iter_1.pth').write_bytes(data[:len(data) // 2])
    (tmp_path / 'iter_3.pth').write_bytes(b'legacy torch.save, not a zip')
    write_complete(tmp_path / 'best_mIoU_iter_2.pth')
    runner, hook = resumed_at(tmp_path, 6, [4, 6])
    hook.before_train(runner)
    assert checkpoints(tmp_path) == [
        'best_mIoU_iter_2.pth', 'iter_10.pth', 'iter_3.pth', 'iter_4.pth', 'iter_6.pth'
    ]
    assert list(hook.keep_ckpt_ids) == [4, 6]
    assert runner.message_hub.get_info('keep_ckpt_ids') == [4, 6]


def test_surplus_checkpoint_removed_at_the_next_save(tmp_path):
    runner, hook = resumed_at(tmp_path, 6, [4, 6])
    for n in (4, 6):
        write_complete(tmp_path / f'iter_{n}.pth')
    hook.before_train(runner)
    write_complete(tmp_path / 'iter_2.pth')  # the surplus appears after the start
    runner.iter = 7
    hook.after_train_iter(runner, 7)
    assert checkpoints(tmp_path) == ['iter_6.pth', 'iter_8.pth']
    assert list(hook.keep_ckpt_ids) == [6, 8]


def test_the_only_complete_checkpoint_is_kept(tmp_path):
    """max_keep_ckpts=1 and the newest file truncated: the complete one below stays."""
    write_complete(tmp_path / 'iter_2.pth')
    (tmp_path / 'iter_4.pth').write_bytes(b'PK\x03\x04 cut short')
    runner, hook = resumed_at(tmp_path, 4, [4], max_keep_ckpts=1)
    hook.before_train(runner)
    assert checkpoints(tmp_path) == ['iter_2.pth']


@pytest.mark.parametrize(
    'error', [
        OSError(errno.ENOSPC, 'No space left on device'),
        RuntimeError('before_save_checkpoint: NaN weights')
    ],
    ids=['disk-full', 'check-raises'])
def test_a_failed_save_loses_nothing(tmp_path, error):
    """The 3rd save (max_keep_ckpts=2) fails half-way: no file of it is left, iter_2/iter_4
    and last_checkpoint stay, the hook and message hub still name iter_4, and the next save
    goes on normally. A full disk is reported with the path and the space needed."""
    runner = fake_runner(tmp_path)
    hook = AtomicCheckpointHook(interval=2, by_epoch=False, max_keep_ckpts=2)
    hook.before_train(runner)
    for runner.iter in range(4):
        hook.after_train_iter(runner, runner.iter)
    last = str(tmp_path / 'iter_4.pth')
    runner.fail, runner.iter = error, 5
    with pytest.raises(type(error)) as raised:
        hook.after_train_iter(runner, 5)
    assert checkpoints(tmp_path) == ['iter_2.pth', 'iter_4.pth']
    assert not glob.glob(str(tmp_path / '.*'))  # the temporary file is gone
    assert (tmp_path / 'last_checkpoint').read_text() == last
    assert (hook.last_ckpt, runner.message_hub.get_info('last_ckpt')) == (last, last)
    assert list(hook.keep_ckpt_ids) == runner.message_hub.get_info('keep_ckpt_ids') == [2, 4]
    if isinstance(error, OSError):
        message = str(raised.value)
        size = osp.getsize(last) / 2**20
        assert raised.value.errno == errno.ENOSPC
        assert str(tmp_path / 'iter_6.pth') in message and 'MiB free in' in message
        assert f'needs about {size:.1f} MiB free (the size of the previous checkpoint ' \
               'iter_4.pth)' in message and 'max_keep_ckpts + 1 = 3 checkpoints' in message
    else:
        assert raised.value is error
    runner.fail, runner.iter = None, 7
    hook.after_train_iter(runner, 7)
    assert checkpoints(tmp_path) == ['iter_4.pth', 'iter_8.pth']


def test_a_failed_best_save_keeps_the_previous_best(tmp_path):
    runner = fake_runner(tmp_path)
    hook = AtomicCheckpointHook(interval=100, by_epoch=False, save_best='mIoU', rule='greater')
    hook.before_train(runner)
    runner.iter = 2
    hook.after_val_epoch(runner, {'mIoU': 0.5})
    best = str(tmp_path / 'best_mIoU_iter_2.pth')
    runner.iter, runner.fail = 6, OSError(errno.ENOSPC, 'No space left on device')
    with pytest.raises(OSError, match='best_mIoU_iter_6.pth'):
        hook.after_val_epoch(runner, {'mIoU': 0.6})
    assert checkpoints(tmp_path) == ['best_mIoU_iter_2.pth']
    assert runner.message_hub.get_info('best_ckpt') == hook.best_ckpt_path == best
    assert runner.message_hub.get_info('best_score') == 0.5


@pytest.mark.usefixtures('one_thread')
def test_resume_after_a_kill_between_rename_and_delete(tmp_path, make_voc, tiny_cfg, build_runner):
    """A real run (max_keep_ckpts=1) left iter_1.pth beside iter_2.pth (as a kill after
    renaming iter_2.pth would): resumed, it is removed (keep_ckpt_ids, [2], comes from
    iter_2.pth: mmengine alone would keep iter_1.pth for ever) and the run ends with one."""
    make_voc(tmp_path / 'data', n_train=2, n_val=1)
    work = tmp_path / 'work'

    def cfg(max_iters, **kwargs):
        return tiny_cfg(
            tmp_path / 'data',
            work,
            max_iters=max_iters,
            ckpt_interval=2,
            val_interval=100,
            lr=1e-5,
            **kwargs,
            default_hooks=dict(checkpoint=dict(max_keep_ckpts=1)))

    build_runner(cfg(2)).train()
    shutil.copy(work / 'iter_2.pth', work / 'iter_1.pth')
    runner = build_runner(cfg(4, resume=True))
    runner.train()
    assert runner.iter == 4 and checkpoints(work) == ['iter_4.pth']
