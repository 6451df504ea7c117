"""Hostile and truncated checkpoints: refused on every load path, and the payload never runs."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

import fcn_plugin  # noqa: F401
from fcn_plugin.utils.checkpoint_safety import (CorruptCheckpointError, UnsafeCheckpointError,
                                                install_safe_checkpoint_loaders)
from mmseg.registry import MODELS

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from test_robustness_common import ROOT, build_runner, make_voc, tiny_cfg  # noqa: E402


class Payload:
    """Unpickling this runs ``exec``, which creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").close()', )


@pytest.fixture
def hostile(tmp_path):
    """A checkpoint that looks like mmengine's, with code in its meta data; and its marker."""
    marker = tmp_path / 'CODE_RAN'
    path = tmp_path / 'hostile.pth'
    torch.save({'meta': {'epoch': 0, 'iter': 1, 'note': Payload(marker)},
                'state_dict': {'backbone.conv1_1.weight': torch.zeros(4, 3, 3, 3)}}, path)
    assert not marker.exists()
    return str(path), marker


def test_the_payload_is_real(hostile):
    """Control: loading it without weights_only runs the code (what everything else prevents)."""
    path, marker = hostile
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_mmengine_load_path_refuses(hostile):
    """resume, test, load_from, init_cfg Pretrained and init_model all end in _load_checkpoint."""
    path, marker = hostile
    with pytest.raises(UnsafeCheckpointError) as info:
        _load_checkpoint(path, map_location='cpu')
    assert path in str(info.value) and 'would call exec,' in str(info.value)
    assert not marker.exists()


def test_refused_even_if_the_environment_turns_weights_only_off(hostile, monkeypatch):
    path, marker = hostile
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(UnsafeCheckpointError):
        _load_checkpoint(path, map_location='cpu')

    # a scheme whose loader calls torch.load without weights_only (as mmengine's http one)
    def load_from_fcntest(filename, map_location=None):
        return torch.load(filename[len('fcntest://'):], map_location=map_location)

    CheckpointLoader.register_scheme('fcntest://', load_from_fcntest)
    try:
        install_safe_checkpoint_loaders()
        with pytest.raises(UnsafeCheckpointError, match='fcntest://'):
            _load_checkpoint('fcntest://' + path, map_location='cpu')
        assert os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] == '1'  # restored afterwards
    finally:
        CheckpointLoader._schemes.pop('fcntest://', None)
    assert not marker.exists()


def test_init_cfg_pretrained_refuses(hostile):
    path, marker = hostile
    backbone = MODELS.build(dict(type='VGG', depth=11, base_channels=4, fc_channels=16,
                                 init_cfg=dict(type='Pretrained', checkpoint=path)))
    with pytest.raises(UnsafeCheckpointError):
        backbone.init_weights()
    assert not marker.exists()


def test_init_model_refuses(hostile, tmp_path):
    from mmseg.apis import init_model
    path, marker = hostile
    cfg = tiny_cfg(tmp_path / 'data', tmp_path / 'work')
    with pytest.raises(UnsafeCheckpointError):
        init_model(cfg, path, device='cpu')
    assert not marker.exists()


def test_runner_test_and_resume_refuse(hostile, tmp_path):
    path, marker = hostile
    make_voc(tmp_path / 'data', n_train=2, n_val=1)
    runner = build_runner(tiny_cfg(tmp_path / 'data', tmp_path / 'work', load_from=path))
    with pytest.raises(UnsafeCheckpointError):
        runner.test()
    (tmp_path / 'resume').mkdir()
    (tmp_path / 'resume' / 'last_checkpoint').write_text(path)
    runner = build_runner(tiny_cfg(tmp_path / 'data', tmp_path / 'resume', resume=True))
    with pytest.raises(UnsafeCheckpointError):
        runner.train()
    assert runner.iter == 0
    assert not marker.exists()


@pytest.mark.parametrize('converter', ['vgg2mmseg.py', 'torchfcn2mmseg.py'])
def test_converters_refuse(hostile, tmp_path, converter):
    path, marker = hostile
    out = tmp_path / 'converted.pth'
    result = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'model_converters', converter), path,
         str(out)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0
    assert path in result.stderr
    assert not marker.exists() and not out.exists()


def test_truncated_checkpoint_is_named(tmp_path):
    path = tmp_path / 'iter_4.pth'
    torch.save({'state_dict': {'w': torch.zeros(256)}}, path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match='iter_4.pth is truncated'):
        _load_checkpoint(str(path), map_location='cpu')
