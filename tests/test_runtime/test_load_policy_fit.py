"""A checkpoint that does not fit the model stops the runner (test, --resume, load_from) with
one error naming the file and the keys; load_from of the staged recipe may lack only the new
stage's score layers (LoadPolicyHook, fcn_plugin/utils/checkpoint_fit.py)."""

import pytest
import torch
from mmengine.runner import save_checkpoint

from fcn_plugin.utils.checkpoint_fit import CheckpointFitError
from fcn_plugin.utils.tool_errors import run_tool

SIXTEEN = dict(
    backbone=dict(out_indices=(3, 5)), decode_head=dict(in_channels=(32, 16), in_index=(0, 1)))


@pytest.fixture
def data(tmp_path, make_voc):
    make_voc(tmp_path / 'data', n_train=2, n_val=1)
    return tmp_path / 'data'


def model_state(cfg):
    from mmseg.registry import MODELS
    model = MODELS.build(cfg.model)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    return model.state_dict()


def test_staged_load_from_and_a_missing_trunk_layer(tmp_path, data, tiny_cfg, build_runner,
                                                    one_thread):
    fcn16s = model_state(tiny_cfg(data, tmp_path / 'w16', model=SIXTEEN))
    save_checkpoint({'state_dict': fcn16s}, str(tmp_path / 'fcn16s.pth'))
    runner = build_runner(
        tiny_cfg(
            data,
            tmp_path / 'w8',
            max_iters=1,
            val_interval=10,
            load_from=str(tmp_path / 'fcn16s.pth')))
    runner.train()  # the 8s stage adds fusions.1 (score_pool3): allowed to be missing
    assert runner.model.checkpoint_fit == 'strict'  # restored after the load

    del fcn16s['backbone.conv2_1.weight']
    save_checkpoint({'state_dict': fcn16s}, str(tmp_path / 'broken.pth'))
    runner = build_runner(
        tiny_cfg(data, tmp_path / 'w8b', max_iters=1, load_from=str(tmp_path / 'broken.pth')))
    with pytest.raises(CheckpointFitError, match=r"1 missing keys \(backbone.conv2_1.weight\)"):
        runner.train()
    assert runner.iter == 0


def test_test_and_resume_need_every_weight(tmp_path, data, tiny_cfg, build_runner):
    state = model_state(tiny_cfg(data, tmp_path / 'w'))
    state['decode_head.conv_seg.weight'] = state['decode_head.conv_seg.weight'][:2]
    wrong = tmp_path / 'wrong_shape.pth'
    save_checkpoint({'state_dict': state, 'meta': dict(epoch=0, iter=3)}, str(wrong))
    runner = build_runner(tiny_cfg(data, tmp_path / 'test', load_from=str(wrong)))
    with pytest.raises(
            CheckpointFitError,
            match=r'1 size mismatches \(decode_head.conv_seg.weight: checkpoint '
            r'\[2, 16, 1, 1\], model \[21, 16, 1, 1\]\)'):
        runner.test()

    (tmp_path / 'resume').mkdir()
    (tmp_path / 'resume' / 'last_checkpoint').write_text(str(wrong))
    runner = build_runner(tiny_cfg(data, tmp_path / 'resume', resume=True))
    with pytest.raises(CheckpointFitError, match=f"{wrong}.*size mismatch"):
        runner.train()
    assert runner.iter == 0

    weights_only = tmp_path / 'weights.pth'  # a fitting state dict without mmengine's meta
    save_checkpoint({'state_dict': model_state(tiny_cfg(data, tmp_path / 'w'))}, str(weights_only))
    (tmp_path / 'resume' / 'last_checkpoint').write_text(str(weights_only))
    runner = build_runner(tiny_cfg(data, tmp_path / 'resume', resume=True))
    with pytest.raises(ValueError, match=f"--resume: {weights_only} has no 'meta'"):
        runner.train()  # not KeyError: 'meta'


def test_tools_test_refuses_unrelated_keys(tmp_path, data, tiny_cfg, load_tool, capsys):
    """tools/test.py on a checkpoint of another network: exit 1, the file and keys named (before
    this, not one weight was loaded and the metrics were printed)."""
    path = tmp_path / 'other.pth'
    torch.save(
        {
            'state_dict': {
                'features.0.weight': torch.zeros(4, 3, 3, 3),
                'classifier.6.bias': torch.zeros(10)
            }
        }, path)
    config = tmp_path / 'tiny.py'
    tiny_cfg(data, tmp_path / 'work').dump(str(config))
    with pytest.raises(SystemExit) as stop:
        run_tool(load_tool('test').main, 'tools/test.py', [str(config), str(path)])
    out, err = capsys.readouterr()
    assert stop.value.code == 1
    assert f'CheckpointFitError: checkpoint {path} does not fit' in err, err[-3000:]
    assert 'shares no key with the model' in err and 'mIoU' not in out
