"""tools/benchmark.py on the narrow FCN-8s at a small size: figures are produced and the plain
PyTorch module it compares against computes the same network."""
import json
import os.path as osp
import statistics
import time

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'tests', 'configs', 'fcn8s_vgg16-narrow_tinyvoc.py')


def test_percentile(load_tool):
    tool = load_tool('benchmark')
    assert tool.percentile([4, 1, 3, 2], 50) == pytest.approx(2.5)
    assert tool.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 90) == pytest.approx(10)
    assert tool.percentile([7], 90) == 7


def test_benchmark_compare_plain_and_train(tmp_path, load_tool):
    tool = load_tool('benchmark')
    out = str(tmp_path / 'bench.json')
    start = time.perf_counter()
    res = tool.main([
        CONFIG, '--shape', '37', '45', '--device', 'cpu', '--repeat', '3', '--warmup', '1',
        '--compare-plain', '--train', '--json', out
    ])
    wall = time.perf_counter() - start
    assert [r['batch_size'] for r in res['runs']] == [1]
    inf, train = res['runs'][0]['inference'], res['runs'][0]['train']
    timed = 0
    for name in ('mmseg', 'plain'):
        r = inf[name]
        times = r['times_s']
        assert len(times) == r['runs'] == 3 and all(t > 0 for t in times)
        timed += sum(times)
        # the figures are the summaries of the measured times
        assert r['median_s'] == statistics.median(times) and r['min_s'] == min(times)
        assert min(times) <= r['median_s'] <= r['p90_s'] <= max(times)
        assert r['images_per_s'] == pytest.approx(1 / r['median_s'])
        assert r['gflops_per_s'] == pytest.approx(r['gflop'] / r['median_s'])
        assert r['gflop'] > 0 and r['peak_mem_bytes'] > 0
    assert timed < wall  # timed runs within the call: seconds, not another unit
    # the network's FLOPs (the backbone's fast path off while counting): the plain module's,
    # less the zero off-diagonal terms the grouped class-wise upsampling does not compute
    assert 0.5 * inf['plain']['gflop'] < inf['mmseg']['gflop'] < inf['plain']['gflop']
    assert inf['check']['max_abs_logit'] > 0  # random score layers: non-trivial logits
    assert inf['check']['max_abs_logit_diff'] <= 1e-4 * inf['check']['max_abs_logit'] + 1e-6
    assert inf['check']['argmax_agreement'] > 0.99
    # the ratio of the two measured medians, and the median of the paired (ABBA) ratios
    assert inf['ratio_mmseg_over_plain'] == pytest.approx(inf['mmseg']['median_s'] /
                                                          inf['plain']['median_s'])
    pairs = [a / b for a, b in zip(inf['mmseg']['times_s'], inf['plain']['times_s'])]
    assert inf['ratio_paired_median'] == pytest.approx(statistics.median(pairs))
    assert min(pairs) <= inf['ratio_paired_median'] <= max(pairs)
    # a training step counts the backward pass: more FLOPs than inference
    assert train['gflop'] > 2 * inf['mmseg']['gflop']
    with open(out) as f:
        saved = json.load(f)
    assert saved['runs'][0]['inference']['mmseg']['median_s'] == inf['mmseg']['median_s']
    assert saved['runs'][0]['inference']['ratio_mmseg_over_plain'] == \
        inf['ratio_mmseg_over_plain']
    assert saved['runs'][0]['inference']['mmseg']['times_s'] == inf['mmseg']['times_s']
    assert saved['precision'] == 'fp32' and saved['channels_last'] is False


def test_benchmark_batch_sweep_in_bf16_channels_last(load_tool):
    """Reduced precision on the CPU: the options reach the model and the plain module, and the
    bf16 logits stay close to each other (both in bf16) with the batch recorded per run."""
    tool = load_tool('benchmark')
    res = tool.main([
        CONFIG, '--shape', '33', '29', '--device', 'cpu', '--repeat', '1', '--warmup', '1',
        '--compare-plain', '--batch-size', '1', '2', '--precision', 'bf16', '--channels-last'
    ])
    assert res['precision'] == 'bf16' and res['channels_last'] is True
    assert [r['batch_size'] for r in res['runs']] == [1, 2]
    for run in res['runs']:
        inf = run['inference']
        assert inf['mmseg']['images_per_s'] == pytest.approx(run['batch_size'] /
                                                             inf['mmseg']['median_s'])
        assert inf['check']['max_abs_logit_diff'] <= 0.05 * inf['check']['max_abs_logit']


def test_benchmark_amp_train_needs_a_gpu(load_tool):
    tool = load_tool('benchmark')
    with pytest.raises(SystemExit, match='AmpOptimWrapper, which needs a GPU'):
        tool.main([
            CONFIG, '--shape', '33', '29', '--device', 'cpu', '--repeat', '1', '--train',
            '--precision', 'fp16'
        ])


def test_compare_plain_follows_the_config_geometry(load_tool):
    """The tiny demo config (conv1_1 padded by 16, 3x3 fc6): the plain module takes its padding,
    kernel and derived crops, and computes the same logits."""
    tool = load_tool('benchmark')
    res = tool.main([
        osp.join(ROOT, 'configs', 'fcn8s_vgg16-tiny_toyvoc.py'), '--shape', '64', '80', '--device',
        'cpu', '--repeat', '1', '--compare-plain'
    ])
    check = res['runs'][0]['inference']['check']
    assert check['max_abs_logit'] > 0
    assert check['max_abs_logit_diff'] <= 1e-4 * check['max_abs_logit']
    assert check['argmax_agreement'] == 1.0
