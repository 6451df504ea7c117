"""--resume in a stage whose config sets load_from (FCN-16s from FCN-32s)."""
from mmengine.config import Config

from fcn_plugin.engine.atomic_checkpoint_hook import settle_resume


def stage_cfg(tmp_path, resume=True):
    return Config(dict(work_dir=str(tmp_path), load_from='work_dirs/fcn32s/iter_100000.pth',
                       resume=resume))


def test_resume_continues_own_checkpoints_not_the_previous_stage(tmp_path):
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_8000.pth'))
    cfg = stage_cfg(tmp_path)
    settle_resume(cfg)
    assert cfg.resume and cfg.load_from is None  # mmengine then resumes from last_checkpoint


def test_resume_without_checkpoints_starts_the_stage_from_load_from(tmp_path):
    cfg = stage_cfg(tmp_path)
    settle_resume(cfg)
    assert not cfg.resume and cfg.load_from == 'work_dirs/fcn32s/iter_100000.pth'


def test_no_resume_keeps_load_from(tmp_path):
    (tmp_path / 'last_checkpoint').write_text('x')
    cfg = stage_cfg(tmp_path, resume=False)
    settle_resume(cfg)
    assert cfg.load_from == 'work_dirs/fcn32s/iter_100000.pth'
