"""tools/dist_train.sh and tools/dist_test.sh on the CPU: 2 processes (torchrun, gloo) must
compute what 1 process computes.

Training: 2 processes x batch 1 and 1 process x batch 2 see the same global batches (no
shuffling), start from the same checkpoint, and use a mean loss over equally sized images, so
DDP's gradient averaging equals the 1-process gradient; after 4 SGD steps with momentum the
weights must agree to float tolerance (and differ from the start). Testing: the 2 ranks'
confusion matrices are gathered, so the metrics equal 1 process's exactly.

The network is the reference FCN-8s graph at 1/16 width (tests/configs/), the data a tiny
dataset in VOC layout fabricated here, so each launch takes seconds.
"""
import glob
import json
import os
import os.path as osp
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from fcn_plugin.apis.log_curves import analyze_logs

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'tests', 'configs', 'fcn8s_vgg16-narrow_tinyvoc.py')
TIMEOUT = 180


def make_tiny_voc(root, num_train=4, num_val=4, shape=(24, 32), seed=0):
    """VOC layout (JPEGImages, SegmentationClass, ImageSets/Segmentation) with same-size images.

    Labels: background with two random rectangles of classes 1-20 and a void (255) border line,
    as VOC outlines objects.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    for sub in ('JPEGImages', 'SegmentationClass', osp.join('ImageSets', 'Segmentation')):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    names = [f'2007_{i:06d}' for i in range(num_train + num_val)]
    for name in names:
        label = np.zeros((h, w), np.uint8)
        img = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
        for _ in range(2):
            cls = int(rng.integers(1, 21))
            y0, x0 = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8))
            y1, x1 = y0 + int(rng.integers(5, 9)), x0 + int(rng.integers(5, 9))
            label[y0:y1, x0:x1] = cls
            img[y0:y1, x0:x1] = (cls * 12) % 256
        label[:, -1] = 255
        Image.fromarray(img).save(osp.join(root, 'JPEGImages', name + '.jpg'), quality=95)
        Image.fromarray(label).save(osp.join(root, 'SegmentationClass', name + '.png'))
    split = osp.join(root, 'ImageSets', 'Segmentation')
    with open(osp.join(split, 'train.txt'), 'w') as f:
        f.write('\n'.join(names[:num_train]) + '\n')
    with open(osp.join(split, 'val.txt'), 'w') as f:
        f.write('\n'.join(names[num_train:]) + '\n')
    return root


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def run_beside(cmd, in_process):
    """Start ``cmd`` (a 2-process job), run ``in_process()`` meanwhile (the same work in this
    process, a tool's main), then wait for the job; its output."""
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1', PORT=free_port())
    for key in ('LOCAL_RANK', 'RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        env.pop(key, None)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert in_process() == 0
        out, _ = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, f'{" ".join(cmd)} failed:\n{out[-6000:]}'
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out


def run_log(work_dir):
    """The text of the (one) run log in ``work_dir/<timestamp>/<timestamp>.log``."""
    logs = glob.glob(osp.join(work_dir, '*', '*.log'))
    assert len(logs) == 1, logs
    with open(logs[0]) as f:
        return f.read()


def data_options(data_root):
    return [
        f'{loader}.dataset.data_root={data_root}'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    ]


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """Tiny data and a starting checkpoint with non-zero score layers (so the whole network
    gets gradients from the first step and predictions are not all background)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import fcn_plugin  # noqa: F401

    tmp = tmp_path_factory.mktemp('dist')
    data_root = make_tiny_voc(str(tmp / 'VOCdevkit' / 'VOC2012'))
    cfg = Config.fromfile(CONFIG)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    for m in model.decode_head.modules():
        if isinstance(m, torch.nn.Conv2d) and not isinstance(m, torch.nn.ConvTranspose2d):
            torch.nn.init.normal_(m.weight, std=0.1)
    # shift the background score so that about half of the val pixels are predicted background:
    # the metrics then count right and wrong pixels of several classes
    with open(osp.join(data_root, 'ImageSets', 'Segmentation', 'val.txt')) as f:
        names = f.read().split()
    images = [
        torch.from_numpy(
            np.array(Image.open(osp.join(data_root, 'JPEGImages',
                                         n + '.jpg')))[..., ::-1].copy()).permute(2, 0, 1)
        for n in names
    ]
    model.eval()
    bias = model.decode_head.conv_seg.bias
    with torch.no_grad():
        inputs = model.data_preprocessor(dict(inputs=images), False)['inputs']

        def logits():
            return torch.stack([s.seg_logits.data for s in model.predict(inputs)])

        before = logits()
        margin = before[:, 1:].max(1).values - before[:, 0]
        # on maps this small the upsampled bias is not 1 everywhere (border): measure per pixel
        bias[0] += 1
        gain = logits()[:, 0] - before[:, 0]
        bias[0] += (margin / gain).median() - 1
    init = str(tmp / 'init.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), init)
    return tmp, data_root, init


def load_state(path):
    import fcn_plugin  # noqa: F401  (allowlists what Runner checkpoints hold)
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


@pytest.mark.usefixtures('one_thread')  # beside the job's 2 processes on the CPUs
def test_dist_train_matches_single_process(setup, load_tool):
    tmp, data_root, init = setup
    opts = data_options(data_root) + [f'load_from={init}']
    one, two = str(tmp / 'train1'), str(tmp / 'train2')
    log2 = run_beside([
        'bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', two, '--cfg-options', *opts,
        'train_dataloader.batch_size=1'
    ], lambda: load_tool('train').main([
        CONFIG, '--work-dir', one, '--cfg-options', *opts, 'train_dataloader.batch_size=2',
        'experiment_name=dist_train_1', 'visualizer.name=dist_train_1'
    ]))
    log1 = run_log(one)
    assert 'Distributed training: True' in log2
    assert "dist_cfg=dict(backend='gloo', timeout=600)" in log2, \
        'without CUDA the backend must be gloo; collectives time out after 10 minutes'
    # progress with ETA, and the metrics at each validation (iterations 2 and 4)
    assert re.search(r'Iter\(train\) \[4/4\].*eta:', log1)
    assert len(re.findall(r'Iter\(val\) \[4/4\].*mIoU', log1)) == 2
    # and the work dir's log becomes a plot of loss and mIoU over iterations
    png = str(tmp / 'curves.png')
    curves = analyze_logs(one, out=png)
    summary = '\n'.join(curves.summary())
    assert 'loss: 4 points' in summary and 'mIoU: 2 points' in summary
    with open(png, 'rb') as f:
        assert f.read(4) == b'\x89PNG'

    start = load_state(init)
    w1 = load_state(osp.join(one, 'iter_4.pth'))
    w2 = load_state(osp.join(two, 'iter_4.pth'))
    assert w1.keys() == w2.keys() == start.keys()
    for key in ('backbone.conv1_1.weight', 'backbone.fc6.weight', 'decode_head.conv_seg.weight'):
        assert not torch.allclose(w1[key], start[key]), f'{key} did not train'
    for key in w1:
        torch.testing.assert_close(w2[key], w1[key], rtol=1e-4, atol=1e-6, msg=key)


def read_test_metrics(work_dir):
    files = [
        f for f in glob.glob(osp.join(work_dir, '*', '*.json'))
        if osp.basename(f)[:-5] == osp.basename(osp.dirname(f))
    ]
    assert len(files) == 1, f'expected one <timestamp>/<timestamp>.json in {work_dir}: {files}'
    with open(files[0]) as f:
        return json.load(f)


@pytest.mark.usefixtures('one_thread')
def test_dist_test_matches_single_process(setup, load_tool):
    tmp, data_root, init = setup
    opts = data_options(data_root)
    one, two = str(tmp / 'test1'), str(tmp / 'test2')
    run_beside([
        'bash', 'tools/dist_test.sh', CONFIG, init, '2', '--work-dir', two, '--cfg-options', *opts
    ], lambda: load_tool('test').main(
        [CONFIG, init, '--work-dir', one, '--cfg-options', *opts, 'experiment_name=dist_test_1']))
    m1, m2 = read_test_metrics(one), read_test_metrics(two)
    for key in ('aAcc', 'mIoU', 'mAcc'):
        assert key in m1, m1
        assert m2[key] == pytest.approx(m1[key], abs=1e-6), (key, m1, m2)
    assert 10 < m1['aAcc'] < 90 and m1['mIoU'] > 0  # some pixels right, some wrong
