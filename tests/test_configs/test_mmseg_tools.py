"""mmseg's own entry points on the plugin's configs behave as ours: its installed
tools/train.py and tools/test.py (what ``mim train/test mmseg`` run) as scripts, ``init_model``
and ``MMSegInferencer`` with a config path, on a child config that changes classes, data_root and
max_iters with mmseg's nested keys (its custom_hooks cannot drop the plugin's hooks)."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import mmseg
import pytest
import torch

MMSEG_TOOLS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')


def run(*args, cwd):
    result = subprocess.run([sys.executable, *args],
                            capture_output=True,
                            text=True,
                            cwd=cwd,
                            env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def test_metrics(work_dir):
    """The metrics JSON a test run writes (``<work_dir>/<timestamp>/<timestamp>.json``)."""
    files = [
        f for f in glob.glob(osp.join(work_dir, '*', '*.json'))
        if osp.basename(f)[:-5] == osp.basename(osp.dirname(f))
    ]
    assert len(files) == 1, files
    with open(files[0]) as f:
        metrics = json.load(f)
    return {k: v for k, v in metrics.items() if k not in ('time', 'data_time')}


test_metrics.__test__ = False  # a helper, not a test


@pytest.fixture(scope='module')
def trained_by_mmseg(tmp_path_factory, toy_binary_child, repo_root):
    """The child config trained 2 iterations by mmseg's own tools/train.py: (config, work dir)."""
    tmp = tmp_path_factory.mktemp('mmseg_tools')
    config = toy_binary_child(tmp / 'child.py', "custom_hooks = [dict(type='EmptyCacheHook')]\n")
    work = str(tmp / 'work')
    run(osp.join(MMSEG_TOOLS, 'train.py'), config, '--work-dir', work, cwd=repo_root)
    return config, work


def test_mmseg_train_and_test_scripts_match_ours(trained_by_mmseg, repo_root, tmp_path, load_tool):
    config, work = trained_by_mmseg
    saved = sorted(n for n in os.listdir(work) if n.endswith('.pth'))
    assert saved == ['iter_1.pth', 'iter_2.pth']
    ckpt = osp.join(work, 'iter_2.pth')
    assert torch.load(ckpt, weights_only=True)['meta']['dataset_meta']['classes'] == ('bg', 'fg')
    theirs, ours = str(tmp_path / 'theirs'), str(tmp_path / 'ours')
    run(osp.join(MMSEG_TOOLS, 'test.py'), config, ckpt, '--work-dir', theirs, cwd=repo_root)
    assert load_tool('test').main([config, ckpt, '--work-dir', ours]) == 0  # ours, in process
    metrics = test_metrics(theirs)
    assert {'aAcc', 'mIoU', 'mAcc', 'fwIoU', 'IoU.bg', 'IoU.fg'} <= set(metrics), metrics
    assert metrics == test_metrics(ours)
    # the plugin's confusion matrix hook ran under mmseg's script too
    assert glob.glob(osp.join(theirs, '*', 'confusion_matrix', 'test.npy'))


def test_init_model_and_inferencer_take_the_config_path(trained_by_mmseg, toy_binary):
    from mmseg.apis import MMSegInferencer, inference_model, init_model
    config, work = trained_by_mmseg
    ckpt = osp.join(work, 'iter_2.pth')
    model = init_model(config, ckpt, device='cpu')
    assert model.dataset_meta['classes'] == ('bg', 'fg')
    image = sorted(glob.glob(osp.join(toy_binary, 'images', 'val', '*')))[0]
    expected = inference_model(model, image)
    result = MMSegInferencer(
        model=config, weights=ckpt, device='cpu')(
            image, return_datasamples=True)
    assert torch.equal(result.pred_sem_seg.data, expected.pred_sem_seg.data)
