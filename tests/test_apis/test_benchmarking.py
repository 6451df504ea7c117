"""fcn_plugin.apis.benchmarking (tools/benchmark.py) on the narrow FCN-8s at a small size: figures
are produced and the plain PyTorch module it compares against computes the same network."""
import contextlib
import io
import json
import logging
import os.path as osp
import statistics
import sys
import time

import pytest
import torch

from fcn_plugin.apis.benchmarking import BenchmarkError, benchmark
from fcn_plugin.apis.measure import percentile

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'tests', 'configs', 'fcn8s_vgg16-narrow_tinyvoc.py')
TINY = osp.join(ROOT, 'configs', 'fcn8s_vgg16-tiny_toyvoc.py')  # the demo's narrow model
TOOL = 'tools/benchmark.py'


@pytest.fixture(scope='module')
def tool(load_tool):
    """The tool's module. mmengine's logger, made on first use, writes to the sys.stdout of
    that moment: made here, it is not a test's captured (then closed) stream."""
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance()
    return load_tool('benchmark')


def test_percentile():
    assert percentile([4, 1, 3, 2], 50) == pytest.approx(2.5)
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 90) == pytest.approx(10)
    assert percentile([7], 90) == 7


def run_tool(tool, argv):
    """``tool.main(argv)``: its exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = tool.main(argv)
    return status, out.getvalue(), err.getvalue()


def test_cli_compare_plain_and_train(tmp_path, tool, monkeypatch):
    """The tool with --compare-plain --train --json: the figures benchmark returned, printed
    and written as they are."""
    out = str(tmp_path / 'sub' / 'bench.json')
    returned = []

    def spy(*args, **kwargs):
        returned.append(benchmark(*args, **kwargs))
        return returned[-1]

    monkeypatch.setattr(tool, 'benchmark', spy)
    start = time.perf_counter()
    status, printed, _ = run_tool(tool, [
        CONFIG, '--shape', '37', '45', '--device', 'cpu', '--repeat', '3', '--warmup', '1',
        '--compare-plain', '--train', '--json', out
    ])
    wall = time.perf_counter() - start
    assert status == 0
    res = returned[0]
    assert [r['batch_size'] for r in res['runs']] == [1]
    assert res['shape'] == [37, 45] and res['device'] == 'cpu' and res['repeat'] == 3
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
    assert len(train['times_s']) == train['runs'] == 3
    with open(out) as f:
        saved = json.load(f)
    assert saved == json.loads(json.dumps(res))  # everything returned, as returned
    assert saved['runs'][0]['inference']['mmseg']['times_s'] == inf['mmseg']['times_s']
    assert saved['precision'] == 'fp32' and saved['channels_last'] is False
    printed = printed.splitlines()  # mmengine's log lines in between
    starts = [
        f'{CONFIG}: 37x45, fp32, CPU, ', 'predict x1 ', 'plain x1 ',
        f'ratio mmseg/plain (medians): {inf["ratio_mmseg_over_plain"]:.3f}', 'train x1 ',
        'memory: RSS high-water mark (VmHWM)', f'figures written to {out}'
    ]
    where = [next(i for i, line in enumerate(printed) if line.startswith(s)) for s in starts]
    assert where == sorted(where) and where[-1] == len(printed) - 1


def test_prints_only_its_results(tool, caplog):
    """No mmengine init report (one INFO record per parameter, "The value is the same before and
    after calling `init_weights`") between the tool's lines: the model is built with the current
    logger at WARNING, which is restored afterwards (other code logs as before)."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    consoles = [h for h in logger.handlers if type(h) is logging.StreamHandler]
    console = io.StringIO()  # what the logger's console handler would show
    streams = [h.setStream(console) for h in consoles]
    logger.addHandler(caplog.handler)
    try:
        status, printed, err = run_tool(
            tool, [CONFIG, '--shape', '33', '29', '--device', 'cpu', '--repeat', '1'])
        logger.info('after the tool')
    finally:
        logger.removeHandler(caplog.handler)
        for handler, stream in zip(consoles, streams):
            handler.setStream(stream)
    assert status == 0 and err == ''
    lines = printed.splitlines()
    assert [line.split()[0] for line in lines] == [f'{CONFIG}:', 'predict', 'memory:'], lines
    assert 'init_weights' not in console.getvalue() + printed
    shown = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert shown == ['after the tool']  # (the registry's DEBUG records are not shown)
    assert logger.level == level


def test_batch_sweep_in_bf16_channels_last():
    """Reduced precision on the CPU: the options reach the model and the plain module, and the
    bf16 logits stay close to each other (both in bf16) with the batch recorded per run."""
    res = benchmark(
        CONFIG,
        shape=(33, 29),
        device='cpu',
        repeat=1,
        compare_plain=True,
        batch_sizes=[1, 2],
        precision='bf16',
        channels_last=True,
        verbose=False)
    assert res['precision'] == 'bf16' and res['channels_last'] is True
    assert res['batch_sizes'] == [1, 2] and [r['batch_size'] for r in res['runs']] == [1, 2]
    for run in res['runs']:
        inf = run['inference']
        assert inf['mmseg']['images_per_s'] == pytest.approx(run['batch_size'] /
                                                             inf['mmseg']['median_s'])
        assert inf['check']['max_abs_logit_diff'] <= 0.05 * inf['check']['max_abs_logit']
        assert 'train' not in run


def test_amp_train_needs_a_gpu(tool):
    with pytest.raises(
            BenchmarkError,
            match="^--train with --precision fp16/bf16 uses "
            "mmengine's AmpOptimWrapper, which needs a GPU$"):
        benchmark(
            CONFIG,
            shape=(33, 29),
            device='cpu',
            repeat=1,
            train=True,
            precision='fp16',
            verbose=False)
    assert run_tool(tool, [CONFIG, '--shape', '33', '29', '--repeat', '0'
                           ]) == (1, '', f'{TOOL}: --repeat must be >= 1\n')


def test_user_errors(tmp_path, tool):
    with pytest.raises(BenchmarkError, match='^config file .*nope.py does not exist$'):
        benchmark(str(tmp_path / 'nope.py'))
    with pytest.raises(BenchmarkError, match='^checkpoint .*missing.pth does not exist$'):
        benchmark(CONFIG, str(tmp_path / 'missing.pth'), shape=(33, 29), device='cpu')
    assert run_tool(
        tool,
        [CONFIG, '--precision', 'bf16', '--cfg-options', 'model.type=Foo'
         ]) == (1, '',
                f"{TOOL}: --precision/--channels-last need model.type 'AutocastEncoderDecoder' (or "
                "mmseg's 'EncoderDecoder'), the config has 'Foo'\n")


def test_compare_plain_follows_the_config_geometry():
    """The tiny demo config (conv1_1 padded by 16, 3x3 fc6): the plain module takes its padding,
    kernel and derived crops, and computes the same logits."""
    res = benchmark(
        osp.join(ROOT, 'configs', 'fcn8s_vgg16-tiny_toyvoc.py'),
        shape=(64, 80),
        device='cpu',
        repeat=1,
        compare_plain=True,
        verbose=False)
    check = res['runs'][0]['inference']['check']
    assert check['max_abs_logit'] > 0
    assert check['max_abs_logit_diff'] <= 1e-4 * check['max_abs_logit']
    assert check['argmax_agreement'] == 1.0


@pytest.mark.usefixtures('unguarded_loaders')
def test_checkpoints_load_weights_only(hostile):
    """benchmark installs the project's weights-only checkpoint loaders (as the tools did at
    start-up): code in a checkpoint is refused even with torch's weights-only turned off."""
    path, marker = hostile
    with pytest.raises(BenchmarkError, match=f'{path} cannot be loaded: UnsafeCheckpointError'):
        benchmark(CONFIG, path, shape=(33, 29), device='cpu', verbose=False)
    assert not marker.exists()


def test_compare_runtimes_with_one_missing(tmp_path, tool, monkeypatch, narrow_fcn8s_export):
    """--compare onnxruntime,openvino,plain with OpenVINO not importable: it is reported in one
    line and skipped; onnxruntime (on the model's ONNX export, given with --onnx: the session's
    export of this config and checkpoint, the export having tests of its own) and the plain
    module are timed interleaved with predict, give predict's logits, and the ratio table and
    the JSON's compare section hold the ratios of the measured medians."""
    export = narrow_fcn8s_export
    monkeypatch.setitem(sys.modules, 'openvino', None)  # import openvino -> ImportError
    out = str(tmp_path / 'peers.json')
    returned = []

    def spy(*args, **kwargs):
        returned.append(benchmark(*args, **kwargs))
        return returned[-1]

    monkeypatch.setattr(tool, 'benchmark', spy)
    status, printed, _ = run_tool(tool, [
        export.config, export.checkpoint, '--shape', '64', '80', '--device', 'cpu', '--repeat', '2',
        '--threads',
        str(torch.get_num_threads()), '--compare', 'onnxruntime, openvino,plain', '--json', out,
        '--onnx', export.onnx, '--cfg-options', *export.argv
    ])
    assert status == 0
    res = returned[0]
    skip = 'openvino: not installed (pip install -e .[openvino]), skipped'
    assert printed.splitlines().count(skip) == 1
    section = res['compare']
    assert section['runtimes'] == ['onnxruntime', 'plain']
    assert section['skipped'] == {'openvino': 'not installed (pip install -e .[openvino])'}
    assert section['threads'] == torch.get_num_threads() and section['onnx_export_s'] is None
    assert section['onnx_file'] == export.onnx and osp.isfile(export.onnx)  # given: kept
    inf = res['runs'][0]['inference']
    assert 'openvino' not in inf and inf['check'] == inf['checks']['plain']  # the old keys too
    for name in ('onnxruntime', 'plain'):
        check = inf['checks'][name]
        assert check['max_abs_logit'] > 0
        assert check['max_abs_logit_diff'] <= 1e-4 * check['max_abs_logit']
        assert check['argmax_agreement'] == 1.0
        assert len(inf[name]['times_s']) == 2 and inf[name]['gflop'] > 0
    # the exported graph is the model's plain forward: the FLOPs predict's count has
    assert inf['onnxruntime']['gflop'] == pytest.approx(inf['mmseg']['gflop'])
    rows = section['runs'][0]['rows']
    assert [r['runtime'] for r in rows] == ['mmseg', 'onnxruntime', 'plain']
    assert section['runs'][0]['batch_size'] == 1
    for row in rows:
        figures = inf[row['runtime']]
        assert row['median_s'] == figures['median_s'] and row['p90_s'] == figures['p90_s']
        assert row['ratio_to_predict'] == pytest.approx(figures['median_s'] /
                                                        inf['mmseg']['median_s'])
        assert row['peak_mem_bytes'] == figures['peak_mem_bytes'] > 0
        assert row['argmax_agreement'] == 1.0 and row['rel_logit_diff'] <= 1e-4
    assert rows[0]['ratio_to_predict'] == 1.0
    assert rows[1]['held_bytes'] == inf['onnxruntime']['held_bytes']
    with open(out) as f:
        assert json.load(f) == json.loads(json.dumps(res))
    lines = printed.splitlines()
    table = lines.index(next(line for line in lines if line.startswith('against other runtimes')))
    assert lines[table].startswith('against other runtimes: batch 1, 64x80, ')
    assert [line.split()[0] for line in lines[table + 2:table + 6]
            ] == ['fcn_plugin', 'onnxruntime', 'plain', 'OpenVINO']
    assert f'{rows[1]["ratio_to_predict"]:.3f}x' in lines[table + 3]
    assert lines[table + 5].endswith('skipped: not installed (pip install -e .[openvino])')


def test_compare_errors(tool):
    """An unknown runtime is argparse's one-line error (the tool) or a BenchmarkError; the
    ONNX runtimes are compared in fp32 on the CPU."""
    with pytest.raises(SystemExit) as exit_info:
        run_tool(tool, [TINY, '--compare', 'plain,tensorrt'])
    assert exit_info.value.code == 2
    with pytest.raises(
            BenchmarkError,
            match=r"^--compare: unknown runtime 'tensorrt' \(choose "
            r'from plain, onnxruntime, openvino, comma-separated\)$'):
        benchmark(TINY, compare=['plain', 'tensorrt'], device='cpu', verbose=False)
    with pytest.raises(
            BenchmarkError,
            match='^--compare onnxruntime: the ONNX runtimes are '
            r'compared on the CPU in fp32 NCHW \(--device cpu'):
        benchmark(TINY, compare='onnxruntime', device='cpu', precision='bf16', verbose=False)
