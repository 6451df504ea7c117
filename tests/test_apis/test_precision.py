"""fcn_plugin.apis.precision_agreement (tools/precision_agreement.py): fp16/bf16 predictions of
a trained model against fp32 on a test split."""
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from fcn_plugin.apis.precision import precision_agreement
from fcn_plugin.utils.config_vars import ConfigError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'fcn8s_vgg16-tiny_toyvoc.py')
TOOL = 'tools/precision_agreement.py'


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


@pytest.mark.usefixtures('unguarded_loaders')
def test_checkpoints_load_weights_only(hostile):
    """precision_agreement installs the project's weights-only checkpoint loaders (as the tools
    did at start-up): code in a checkpoint is refused even with torch's weights-only off."""
    from fcn_plugin.utils.checkpoint_safety import UnsafeCheckpointError
    path, marker = hostile
    with pytest.raises(UnsafeCheckpointError):
        precision_agreement(CONFIG, path, device='cpu')
    assert not marker.exists()
