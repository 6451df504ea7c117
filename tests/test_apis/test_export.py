"""fcn_plugin.apis.export_onnx (tools/deployment/pytorch2onnx.py): raw image in, logits of the
image's size out, any size."""
import dataclasses
import os.path as osp
import sys

import numpy as np
import pytest
import torch

from fcn_plugin.apis.export import ExportError, build_model, export_onnx, load_config, parse_shape
from fcn_plugin.apis.onnx_check import check_onnx
from fcn_plugin.apis.onnx_graph import ONNXSegmentor, export_graph

onnx = pytest.importorskip('onnx', reason='pip install -e .[onnx]')
ort = pytest.importorskip('onnxruntime', reason='pip install -e .[onnx]')
pytest.importorskip('onnxscript', reason='pip install -e .[onnx]')

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FCN8S = osp.join(ROOT, 'configs', 'fcn8s_vgg16_voc.py')
ATONCE = osp.join(ROOT, 'configs', 'fcn8s-atonce_vgg16_voc.py')
R50 = osp.join(ROOT, 'configs', 'fcn8s_r50_voc12aug.py')
CAFFE_MEAN = torch.tensor([104.00699, 116.66877, 122.67892]).view(1, 3, 1, 1)
TOOL = 'tools/deployment/pytorch2onnx.py'


@pytest.fixture(scope='module')
def tool(load_tool):
    """The tool's module. mmengine's logger, made on first use, writes to the sys.stdout of
    that moment: made here, it is not a test's captured (then closed) stream."""
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance()
    return load_tool('deployment/pytorch2onnx')


@pytest.fixture(scope='module')
def fcn8s(narrow_fcn8s_export):
    """A narrow FCN-8s exported from a checkpoint (once per session, shared with the benchmark
    tests): ``(the ExportResult, the PyTorch model, the .onnx file, the checkpoint)``."""
    export = narrow_fcn8s_export
    assert export.config == FCN8S
    return export.result, export.model, export.onnx, export.checkpoint


@pytest.fixture(scope='module')
def narrow(narrow_fcn8s_export):
    """The --cfg-options that narrow the VGG16 configs (1/16 width), as a dict."""
    return narrow_fcn8s_export.options


def test_export_checks_other_sizes(fcn8s):
    result, _, out, _ = fcn8s
    assert result.ok and osp.isfile(out) and result.out == out
    assert result.min_size == (1, 1) and result.shape == (64, 80) and result.batch == 'batch'
    assert result.num_classes == 21 and result.seconds > 0
    assert [r['shape'] for r in result.checks] == [(1, 64, 80), (1, 97, 131), (1, 1, 1),
                                                   (2, 31, 17)]
    for r in result.checks:
        assert r['ok'] and r['rel'] <= 1e-4 and r['out_shape'] == (r['shape'][0], 21) + \
            r['shape'][1:], r
    printed = '\n'.join(result.lines())
    assert 'height >= 1, width >= 1' in printed
    for size in ('1x3x64x80', '1x3x97x131', '1x3x1x1', '2x3x31x17'):
        line = next(line for line in printed.splitlines() if line.strip().startswith(size))
        assert line.endswith('OK'), line


def test_graph_io_names_and_dynamic_dims(fcn8s):
    result, *_ = fcn8s
    model = onnx.load(result.out)

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert [v.name for v in model.graph.input] == ['image']  # weights are not inputs
    assert [v.name for v in model.graph.output] == ['logits']
    assert dims(model.graph.input[0]) == ['batch', 3, 'height', 'width']
    assert dims(model.graph.output[0]) == ['batch', 21, 'height', 'width']
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta['min_height'] == meta['min_width'] == '1'
    # conv1_1 padded by 100 takes any size: no pad for small images in the graph
    assert not {'Pad', 'Max'} & {n.op_type for n in model.graph.node}
    assert result.opset == next(o.version for o in model.opset_import if o.domain == '')


def test_normalisation_is_inside_the_graph(fcn8s):
    """Raw 0-255 BGR pixels in; the Caffe mean is subtracted by the graph (std 1, no swap)."""
    result, model, out, _ = fcn8s
    assert result.preprocessing.startswith('(x - [104.007, 116.669, 122.679]) / [1, 1, 1]')
    session = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    raw = torch.randint(0, 256, (1, 3, 45, 38)).float()
    with torch.no_grad():
        feats = model.backbone(raw - CAFFE_MEAN)
        expected = model.decode_head(feats, input_size=(45, 38))
    got = session.run(['logits'], {'image': raw.numpy()})[0]
    assert got.shape == (1, 21, 45, 38)
    scale = expected.abs().max().item()
    assert scale > 0
    np.testing.assert_allclose(got, expected.numpy(), rtol=0, atol=1e-4 * scale)
    # the unnormalised image gives different logits: the mean really is applied inside
    plain = session.run(['logits'], {'image': (raw - CAFFE_MEAN).numpy()})[0]
    assert np.abs(plain - got).max() > 1e-2 * scale


def test_cli_passes_its_flags_and_prints_the_result(fcn8s, narrow_fcn8s_export, tool, monkeypatch,
                                                    capsys):
    """The tool's flags reach export_onnx; it prints the result and fails on a failed check."""
    result, _, out, ckpt = fcn8s
    checks, argv, options = (narrow_fcn8s_export.checks, narrow_fcn8s_export.argv,
                             narrow_fcn8s_export.options)
    calls = []

    def fake(*args, **kwargs):
        calls.append((args, kwargs))
        return returned

    monkeypatch.setattr(tool, 'export_onnx', fake)
    returned = result
    assert tool.main([FCN8S, ckpt, '--out', out, '--shape', '64', '80', '--check-shapes'] + checks +
                     ['--cfg-options'] + argv) == 0
    assert calls == [((FCN8S, ckpt, out),
                      dict(
                          opset=None,
                          shape=(64, 80),
                          check_shapes=checks,
                          rtol=1e-4,
                          static_batch=False,
                          cfg_options=options,
                          verbose=False))]
    captured = capsys.readouterr()
    assert captured.out == '\n'.join(result.lines()) + '\n' and captured.err == ''

    bad = dict(result.checks[0], max_abs=1.0, rel=1.0, ok=False)
    returned = dataclasses.replace(result, checks=[bad] + result.checks[1:], rtol=1e-5)
    assert not returned.ok
    assert tool.main([FCN8S, ckpt, '--out', out, '--rtol', '1e-5', '--static-batch']) == 1
    assert calls[-1][1]['static_batch'] and calls[-1][1]['rtol'] == 1e-5
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-4].endswith('FAIL')
    assert captured.err == (f'{TOOL}: onnxruntime does not match PyTorch within 1e-05 x '
                            'max|logit| (or no size could be checked)\n')


def test_atonce_with_a_small_first_padding_matches_pytorch_at_every_size(tmp_path, narrow):
    """FCN-8s at-once (pool4 x0.01, pool3 x1e-4, inside the graph) with the demo config's
    geometry: conv1_1 padded by 16 and a 3x3 fc6 need 35 px a side. In PyTorch the backbone pads
    smaller images with zeros (bottom/right, after normalisation) and the head crops the logits
    back; the graph does the same, so every size runs with PyTorch's logits. (One export for
    both properties: each export costs seconds.)"""
    options = {
        **narrow, 'model.backbone.first_conv_padding': 16,
        'model.backbone.fc6_kernel_size': 3
    }
    model = build_model(load_config(ATONCE, options), None)
    assert model.decode_head.fusions[0].skip_scale == 0.01  # pool4, then pool3: 1e-4
    assert model.backbone.min_input_size == 35
    with torch.no_grad():  # large skip scores, so that the scaled skips show in the logits
        for fusion in model.decode_head.fusions:
            fusion.score.weight.normal_(std=1 / fusion.skip_scale)
    ckpt, out = str(tmp_path / 'atonce.pth'), str(tmp_path / 'atonce.onnx')
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    sizes = ['1x1', '20x26', '34x35', '35x35', '2x20x57', '97x131', '375x500']
    result = export_onnx(ATONCE, ckpt, out, shape=(40, 48), check_shapes=sizes, cfg_options=options)
    assert result.min_size == (1, 1) and result.ok, result.lines()
    assert [r['out_shape'] for r in result.checks] == [(1, 21, 1, 1), (1, 21, 20, 26),
                                                       (1, 21, 34, 35), (1, 21, 35, 35),
                                                       (2, 21, 20, 57), (1, 21, 97, 131),
                                                       (1, 21, 375, 500)]
    assert 'height >= 1, width >= 1' in result.lines()[1]
    graph = onnx.load(out)
    assert {p.key: p.value for p in graph.metadata_props}['min_height'] == '1'
    # what the graph computes below the minimum: the network on the zero-padded image, cropped
    raw = torch.randint(0, 256, (1, 3, 20, 26)).float()
    pre = model.data_preprocessor
    with torch.no_grad():
        padded = torch.nn.functional.pad((raw - pre.mean) / pre.std, (0, 9, 0, 15))
        expected = model.decode_head(model.backbone(padded), input_size=(20, 26))
    got = ort.InferenceSession(out).run(['logits'], {'image': raw.numpy()})[0]
    np.testing.assert_allclose(
        got, expected.numpy(), rtol=0, atol=1e-4 * expected.abs().max().item())


def test_resnet_config_with_channel_swap(tmp_path):
    """mmseg's ResNet (depth 18 at 1/8 width, for speed) + our head: BGR->RGB and ImageNet
    mean/std inside."""
    cfg = load_config(
        R50, {
            'model.backbone.depth': 18,
            'model.backbone.stem_channels': 8,
            'model.backbone.base_channels': 8,
            'model.decode_head.in_channels': (16, 32, 64),
            'model.auxiliary_head.in_channels': 32
        })
    model = build_model(cfg, None)
    wrapper = ONNXSegmentor(model).eval()
    assert wrapper.swap_channels and wrapper.normalize
    out = str(tmp_path / 'r18.onnx')
    export_graph(wrapper, out, (40, 56))
    rows = check_onnx(out, model, [(1, 33, 47), (1, 1, 1), (2, 61, 29)])
    assert all(r['ok'] for r in rows), rows
    raw = torch.randint(0, 256, (1, 3, 37, 53)).float()
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = model.decode_head(model.backbone((raw.flip(1) - mean) / std), (37, 53))
    got = ort.InferenceSession(out).run(['logits'], {'image': raw.numpy()})[0]
    np.testing.assert_allclose(
        got, expected.numpy(), rtol=0, atol=1e-4 * expected.abs().max().item())


def test_user_errors_are_one_line(tool, tmp_path, capsys):
    out = str(tmp_path / 'x.onnx')
    missing = str(tmp_path / 'missing.pth')
    assert tool.main([FCN8S, missing, '--out', out]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f'{TOOL}: checkpoint file {missing} does not exist'
    assert tool.main([str(tmp_path / 'nope.py'), missing, '--out', out]) == 1
    assert 'config file' in capsys.readouterr().err
    assert not osp.exists(out)
    with pytest.raises(ExportError, match='NxHxW'):
        parse_shape('3x')
    assert parse_shape('2x97x131') == (2, 97, 131) and parse_shape((5, 7)) == (1, 5, 7)
    with pytest.raises(ExportError, match='sizes must be positive'):
        export_onnx(FCN8S, None, out, shape=(0, 5))


def test_missing_onnxruntime_says_how_to_install(tool, tmp_path, capsys, monkeypatch):
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'')
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # import fails as if not installed
    assert tool.main([FCN8S, str(ckpt), '--out', str(tmp_path / 'x.onnx')]) == 1
    assert capsys.readouterr().err.strip() == (
        f'{TOOL}: onnxruntime is not installed: pip install -e .[onnx]')


@pytest.mark.usefixtures('unguarded_loaders')
def test_checkpoints_load_weights_only(tmp_path, hostile, narrow):
    """export_onnx installs the project's weights-only checkpoint loaders (as the tools did at
    start-up): code in a checkpoint is refused even with torch's weights-only turned off."""
    path, marker = hostile
    with pytest.raises(ExportError, match='cannot be loaded: UnsafeCheckpointError'):
        export_onnx(FCN8S, path, str(tmp_path / 'x.onnx'), cfg_options=narrow)
    assert not marker.exists()


def test_a_baked_in_size_is_an_error_not_a_static_graph(tmp_path, monkeypatch, narrow):
    """An int() of a traced size would fix the graph to the traced size: refused, loudly."""
    from fcn_plugin.models.layers import feature_maps
    original = feature_maps.FeatureMaps.__new__

    def baking_new(cls, maps, coord_maps=None, input_size=None):
        self = original(cls, maps, coord_maps, input_size)
        self.input_size = None if input_size is None else tuple(int(s) for s in input_size)
        return self

    monkeypatch.setattr(feature_maps.FeatureMaps, '__new__', baking_new)
    model = build_model(load_config(FCN8S, narrow), None)
    with pytest.raises(ExportError, match='dynamic sizes'):
        export_graph(ONNXSegmentor(model).eval(), str(tmp_path / 'x.onnx'), (64, 80))
    assert not (tmp_path / 'x.onnx').exists()
