"""A config that sets its own custom_hooks keeps every safety feature: the runtime's hooks are
named default hooks (configs/_base_/fcn_runtime.py), which configs merge by key. Built as mmseg's
tools build it (Runner.from_cfg), from a child of a shipped config with
custom_hooks = [dict(type='EmptyCacheHook')]."""
import os
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from fcn_plugin.datasets.label_checks import BadDatasetError
from fcn_plugin.runtime import DivergenceError
from fcn_plugin.utils.checkpoint_fit import CheckpointFitError

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture
def user_runner(tmp_path, toy_binary_child):
    """``user_runner(**options)``: Runner.from_cfg of the child config with its own
    custom_hooks, ``options`` merged as --cfg-options would."""
    path = toy_binary_child(tmp_path / 'mine.py', "custom_hooks = [dict(type='EmptyCacheHook')]\n")

    def build(**options):
        cfg = Config.fromfile(path)
        cfg.merge_from_dict(dict(work_dir=str(tmp_path / 'work'), **options))
        cfg.experiment_name = f'user_hooks_{uuid.uuid4().hex[:8]}'
        return Runner.from_cfg(cfg)

    return build


def test_own_custom_hooks_keep_the_runtime(user_runner):
    types = {type(h).__name__ for h in user_runner().hooks}
    assert {
        'EmptyCacheHook', 'LoadPolicyHook', 'PreflightHook', 'DivergenceHook',
        'AtomicCheckpointHook', 'ConfusionMatrixHook'
    } <= types, types


def test_a_diverging_run_stops_with_only_finite_checkpoints(tmp_path, user_runner):
    runner = user_runner(**{'optim_wrapper.optimizer.lr': 1e30, 'train_cfg.max_iters': 6})
    with pytest.raises(DivergenceError):
        runner.train()
    saved = [n for n in os.listdir(tmp_path / 'work') if n.endswith('.pth')]
    assert runner.iter < 6
    for name in saved:
        ckpt = torch.load(tmp_path / 'work' / name, weights_only=True)
        assert all(
            torch.isfinite(v).all() for v in ckpt['state_dict'].values()
            if v.is_floating_point()), name


def test_a_checkpoint_that_does_not_fit_is_refused(tmp_path, user_runner):
    runner = user_runner()
    state = {k: v.clone() for k, v in runner.model.state_dict().items()}
    state['decode_head.conv_seg.weight'] = state['decode_head.conv_seg.weight'][:1]
    wrong = str(tmp_path / 'other.pth')
    torch.save({'state_dict': state, 'meta': {}}, wrong)
    runner = user_runner(load_from=wrong)
    with pytest.raises(
            CheckpointFitError,
            match=f'checkpoint {wrong} does not fit.*'
            'decode_head.conv_seg.weight'):
        runner.test()


def test_0_255_masks_are_stopped_before_the_first_iteration(user_runner):
    runner = user_runner(**{'train_dataloader.dataset.data_prefix.seg_map_path': 'masks/train'})
    with pytest.raises(BadDatasetError, match='binary masks saved as 0/255'):
        runner.train()
    assert runner.iter == 0


def test_hooks_listed_by_earlier_versions_still_build(user_runner, monkeypatch):
    """custom_hooks copied from an earlier fcn_runtime.py: the replaced names build and only say
    they can go; the guard listed twice checks once; a replaced hook whose replacement was
    turned off (DisabledHook: mmengine takes None only for its own default hook names) stops
    the run with the line to add."""
    import fcn_plugin.runtime.hook_names as replaced
    said = []
    monkeypatch.setattr(replaced, 'print_log', lambda msg, *a, **k: said.append(msg))
    old = [
        dict(type=t) for t in ('ResumeHook', 'ConfigCheckHook', 'CheckpointFitHook',
                               'DataCheckHook', 'DivergenceHook', 'LrOverrideHook',
                               'ExactResumeHook', 'ConfusionMatrixHook', 'EmptyCacheHook')
    ]
    runner = user_runner(custom_hooks=old)
    runner.train()
    assert runner.iter == 2 and len(said) == 6 and 'ResumeHook is no longer needed' in said[0]
    guards = [h for h in runner.hooks if type(h).__name__ == 'DivergenceHook']
    assert len(guards) == 2 and [g.active for g in guards] == [True, False]
    runner = user_runner(
        custom_hooks=old[:1] + old[-1:], default_hooks=dict(load_policy=dict(type='DisabledHook')))
    with pytest.raises(
            ValueError,
            match=r"ResumeHook was replaced by default_hooks\.load_policy "
            r"\(LoadPolicyHook\).*default_hooks=dict\(load_policy="):
        runner.train()
