"""tools/benchmark.py on the narrow FCN-8s at a small size: figures are produced and the plain
PyTorch module it compares against computes the same network."""
import importlib.util
import json
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'tests', 'configs', 'fcn8s_vgg16-narrow_tinyvoc.py')


def load_tool():
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    try:
        spec = importlib.util.spec_from_file_location(
            'benchmark', osp.join(ROOT, 'tools', 'benchmark.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(osp.join(ROOT, 'tools'))
    return module


def test_percentile():
    tool = load_tool()
    assert tool.percentile([4, 1, 3, 2], 50) == pytest.approx(2.5)
    assert tool.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 90) == pytest.approx(10)
    assert tool.percentile([7], 90) == 7


def test_benchmark_compare_plain_and_train(tmp_path):
    tool = load_tool()
    out = str(tmp_path / 'bench.json')
    res = tool.main([CONFIG, '--shape', '37', '45', '--device', 'cpu', '--repeat', '2',
                     '--warmup', '1', '--compare-plain', '--train', '--json', out])
    assert [r['batch_size'] for r in res['runs']] == [1]
    inf, train = res['runs'][0]['inference'], res['runs'][0]['train']
    for name in ('mmseg', 'plain'):
        r = inf[name]
        assert len(r['times_s']) == 2 and r['median_s'] > 0 and r['p90_s'] >= r['median_s']
        assert r['gflop'] > 0 and r['peak_mem_bytes'] > 0
    # the network's FLOPs (the backbone's fast path off while counting): the plain module's,
    # less the zero off-diagonal terms the grouped class-wise upsampling does not compute
    assert 0.5 * inf['plain']['gflop'] < inf['mmseg']['gflop'] < inf['plain']['gflop']
    assert inf['check']['max_abs_logit'] > 0  # random score layers: non-trivial logits
    assert inf['check']['max_abs_logit_diff'] <= 1e-4 * inf['check']['max_abs_logit'] + 1e-6
    assert inf['check']['argmax_agreement'] > 0.99
    assert inf['ratio_mmseg_over_plain'] == pytest.approx(
        inf['mmseg']['median_s'] / inf['plain']['median_s'])
    # a training step counts the backward pass: more FLOPs than inference
    assert train['gflop'] > 2 * inf['mmseg']['gflop']
    with open(out) as f:
        saved = json.load(f)
    assert saved['runs'][0]['inference']['mmseg']['median_s'] == inf['mmseg']['median_s']
    assert saved['precision'] == 'fp32' and saved['channels_last'] is False


def test_benchmark_batch_sweep_in_bf16_channels_last():
    """Reduced precision on the CPU: the options reach the model and the plain module, and the
    bf16 logits stay close to each other (both in bf16) with the batch recorded per run."""
    tool = load_tool()
    res = tool.main([CONFIG, '--shape', '33', '29', '--device', 'cpu', '--repeat', '1',
                     '--warmup', '1', '--compare-plain', '--batch-size', '1', '2',
                     '--precision', 'bf16', '--channels-last'])
    assert res['precision'] == 'bf16' and res['channels_last'] is True
    assert [r['batch_size'] for r in res['runs']] == [1, 2]
    for run in res['runs']:
        inf = run['inference']
        assert inf['mmseg']['images_per_s'] == pytest.approx(
            run['batch_size'] / inf['mmseg']['median_s'])
        assert inf['check']['max_abs_logit_diff'] <= 0.05 * inf['check']['max_abs_logit']


def test_benchmark_amp_train_needs_a_gpu():
    tool = load_tool()
    with pytest.raises(SystemExit, match='AmpOptimWrapper, which needs a GPU'):
        tool.main([CONFIG, '--shape', '33', '29', '--device', 'cpu', '--repeat', '1',
                   '--train', '--precision', 'fp16'])


def test_compare_plain_follows_the_config_geometry():
    """The tiny demo config (conv1_1 padded by 16, 3x3 fc6): the plain module takes its padding,
    kernel and derived crops, and computes the same logits."""
    tool = load_tool()
    res = tool.main([osp.join(ROOT, 'configs', 'fcn8s_vgg16-tiny_toyvoc.py'), '--shape', '64',
                     '80', '--device', 'cpu', '--repeat', '1', '--compare-plain'])
    check = res['runs'][0]['inference']['check']
    assert check['max_abs_logit'] > 0
    assert check['max_abs_logit_diff'] <= 1e-4 * check['max_abs_logit']
    assert check['argmax_agreement'] == 1.0
