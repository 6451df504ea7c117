"""fcn_plugin.apis.precision_agreement (tools/precision_agreement.py): fp16/bf16 predictions of
a trained model against fp32 on a test split."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from fcn_plugin.apis.precision import precision_agreement
from fcn_plugin.utils.config_vars import ConfigError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'fcn8s_vgg16-tiny_toyvoc.py')
TOOL = 'tools/precision_agreement.py'


@pytest.fixture(scope='module')
def toy_and_checkpoint(tmp_path_factory):
    """Two toy val images and a checkpoint of the tiny demo model with random score layers."""
    from mmengine.logging import MMLogger
    from mmseg.registry import MODELS

    from fcn_plugin.datasets.toy_data import make_toy_voc
    from fcn_plugin.datasets.toy_voc import TOY_CLASSES
    from fcn_plugin.utils.label_png import voc_palette
    MMLogger.get_current_instance()  # made outside the tests' captured streams
    tmp = tmp_path_factory.mktemp('precision')
    make_toy_voc(str(tmp / 'toy'), num_train=1, num_val=2)
    model = MODELS.build(Config.fromfile(CONFIG).model)
    model.init_weights()
    torch.nn.init.normal_(model.decode_head.conv_seg.weight)  # non-trivial predictions
    meta = dict(classes=list(TOY_CLASSES), palette=voc_palette()[:6].tolist())
    ckpt = str(tmp / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=meta)), ckpt)
    return tmp, ckpt


@pytest.fixture(scope='module')
def cli_run(toy_and_checkpoint, load_tool):
    """``tools/precision_agreement.py --precisions bf16 --json`` on the toy val split, run once:
    ``(exit status, what it printed, what precision_agreement returned, the JSON file)``."""
    import contextlib
    import io
    tmp, ckpt = toy_and_checkpoint
    tool = load_tool('precision_agreement')
    returned = []

    def spy(*args, **kwargs):
        returned.append(precision_agreement(*args, **kwargs))
        return returned[-1]

    tool.precision_agreement, real = spy, tool.precision_agreement
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            status = tool.main([
                CONFIG, ckpt, '--precisions', 'bf16', '--device', 'cpu', '--json',
                str(tmp / 'p.json'), '--cfg-options',
                f'test_dataloader.dataset.data_root={tmp / "toy"}'
            ])
    finally:
        tool.precision_agreement = real
    return status, out.getvalue(), returned[0], tmp / 'p.json'


def test_bf16_agrees_with_fp32(cli_run, toy_and_checkpoint):
    status, _, agreement, _ = cli_run
    tmp, ckpt = toy_and_checkpoint
    assert status == 0
    results = agreement.results
    assert set(results) == {'fp32', 'bf16'} and 'agreement_with_fp32' not in results['fp32']
    assert 0.95 < results['bf16']['agreement_with_fp32'] <= 1
    assert abs(results['bf16']['metrics']['mIoU'] - results['fp32']['metrics']['mIoU']) < 5
    # every pixel of the two val labels but the 255 void borders
    val = (tmp / 'toy' / 'ImageSets' / 'Segmentation' / 'val.txt').read_text().split()
    labels = [np.array(Image.open(tmp / 'toy' / 'SegmentationClass' / f'{i}.png')) for i in val]
    assert len(labels) == agreement.images == 2
    assert agreement.labelled_pixels == sum(int((lab != 255).sum()) for lab in labels) > 0
    assert (agreement.config, agreement.checkpoint) == (CONFIG, ckpt)


def test_cli_prints_and_writes_the_figures(cli_run):
    _, printed, agreement, json_file = cli_run
    with open(json_file) as f:
        assert json.load(f) == json.loads(json.dumps(agreement.results))
    lines = printed.splitlines()
    assert lines[-3:] == agreement.lines()
    assert lines[-3] == (f'{CONFIG} {agreement.checkpoint}: 2 images, '
                         f'{agreement.labelled_pixels} labelled pixels')
    assert lines[-2].startswith('fp32  reference') and 'mIoU' in lines[-2]
    share = agreement.results['bf16']['agreement_with_fp32'] * 100
    assert lines[-1].startswith(f'bf16  argmax = fp32 on {share:.3f}% of pixels')


def test_user_errors(toy_and_checkpoint, load_tool, tmp_path, capsys):
    _, ckpt = toy_and_checkpoint
    missing = str(tmp_path / 'missing.pth')
    with pytest.raises(FileNotFoundError, match='missing.pth does not exist'):
        precision_agreement(CONFIG, missing)
    with pytest.raises(ConfigError, match="need model.type 'AutocastEncoderDecoder'"):
        precision_agreement(CONFIG, ckpt, cfg_options={'model.type': 'CascadeEncoderDecoder'})
    with pytest.raises(ConfigError, match='fp32'):
        precision_agreement(CONFIG, ckpt, precisions=['fp32'])
    assert load_tool('precision_agreement').main([CONFIG, missing]) == 1
    assert capsys.readouterr().err == f'{TOOL}: {missing} does not exist\n'


class Payload:
    """Unpickling this runs ``exec``, which creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").close()', )


def test_checkpoints_load_weights_only(tmp_path, monkeypatch):
    """precision_agreement installs the project's weights-only checkpoint loaders (as the tools
    did at start-up): code in a checkpoint is refused even with torch's weights-only off."""
    from mmengine.runner import checkpoint as mmengine_checkpoint

    from fcn_plugin.utils.checkpoint_safety import UnsafeCheckpointError
    marker, path = tmp_path / 'CODE_RAN', str(tmp_path / 'hostile.pth')
    torch.save(dict(state_dict={}, meta=dict(x=Payload(marker))), path)
    monkeypatch.setattr(mmengine_checkpoint.CheckpointLoader, '_schemes',
                        {'': mmengine_checkpoint.load_from_local})  # as mmengine has them
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(UnsafeCheckpointError):
        precision_agreement(CONFIG, path, device='cpu')
    assert not marker.exists()
