"""AtomicCheckpointHook: checkpoints and last_checkpoint are complete or absent, old ones are
deleted only after the new one is complete; every config selects it (and the other plugin
hooks). A kill during a save: tests/test_engine/test_exact_resume.py."""
import glob
import os
import os.path as osp
import uuid
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import CheckpointHook
from mmengine.logging import MessageHub, MMLogger

from fcn_plugin.engine import AtomicCheckpointHook, is_complete_checkpoint


def fake_runner(work_dir):
    """What CheckpointHook uses of a runner; ``saves`` records, for each save_checkpoint call,
    the file name written, the checkpoints on disk then and what last_checkpoint named."""
    saves = []

    def save_checkpoint(out_dir, filename, file_client_args=None, **kwargs):
        last = osp.join(work_dir, 'last_checkpoint')
        saves.append(SimpleNamespace(
            name=filename, on_disk=checkpoints(out_dir),
            last=open(last).read() if osp.exists(last) else None))
        torch.save({'meta': kwargs.get('meta')}, osp.join(out_dir, filename))

    name = f'atomic_{uuid.uuid4().hex[:8]}'
    return SimpleNamespace(
        work_dir=str(work_dir), logger=MMLogger.get_instance(name, log_level='WARNING'),
        message_hub=MessageHub.get_instance(name), epoch=0, iter=0, max_iters=100,
        save_checkpoint=save_checkpoint, saves=saves)


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
    assert [s.name.split('.tmp-')[0] for s in runner.saves] == [
        '.best_mIoU_iter_2.pth', '.best_mIoU_iter_6.pth']
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


CONFIGS = sorted(glob.glob(osp.join(osp.dirname(__file__), '..', '..', 'configs', '*.py')) +
                 glob.glob(osp.join(osp.dirname(__file__), '..', 'configs', '*.py')))


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_every_config_selects_the_plugin_hooks(path):
    """Our fixes are selected by name (mmengine's CheckpointHook and LoggerHook stay what every
    other config gets); a config inheriting mmseg's runtime keeps its checkpoint settings."""
    cfg = Config.fromfile(path)
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
    assert cfg.default_hooks.logger.type == 'RankZeroLoggerHook'
    assert 'ResumeHook' in [h['type'] for h in cfg.custom_hooks]
    if osp.basename(path) == 'fcn8s_r50_voc12aug.py':
        import mmseg
        base = Config.fromfile(osp.join(
            osp.dirname(mmseg.__file__), '.mim', 'configs', 'fcn',
            'fcn_r50-d8_4xb4-20k_voc12aug-512x512.py')).default_hooks
        for key, mmengine_type in (('checkpoint', 'CheckpointHook'), ('logger', 'LoggerHook')):
            ours = {k: v for k, v in cfg.default_hooks[key].items() if k != '_scope_'}
            assert {**ours, 'type': mmengine_type} == base[key]
