"""tools/benchmark.py on the narrow FCN-8s at a small size: figures are produced and the plain
PyTorch module it compares against computes the same network."""
import importlib.util
import json
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
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
    inf = res['inference']
    for name in ('mmseg', 'plain'):
        r = inf[name]
        assert len(r['times_s']) == 2 and r['median_s'] > 0 and r['p90_s'] >= r['median_s']
        assert r['gflop'] > 0 and r['peak_mem_bytes'] > 0
    # same network, same weights: same FLOPs (within the bilinear resize mmseg adds) and logits
    assert inf['mmseg']['gflop'] == pytest.approx(inf['plain']['gflop'], rel=0.01)
    assert inf['check']['max_abs_logit'] > 0  # random score layers: non-trivial logits
    assert inf['check']['max_abs_logit_diff'] <= 1e-4 * inf['check']['max_abs_logit'] + 1e-6
    assert inf['check']['argmax_agreement'] > 0.99
    assert inf['ratio_mmseg_over_plain'] > 0
    # a training step counts the backward pass: more FLOPs than inference
    assert res['train']['gflop'] > 2 * inf['mmseg']['gflop']
    with open(out) as f:
        assert json.load(f)['inference']['mmseg']['median_s'] == inf['mmseg']['median_s']
