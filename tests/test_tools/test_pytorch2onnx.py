"""tools/deployment/pytorch2onnx.py: raw image in, logits of the image's size out, any size."""
import contextlib
import io
import os.path as osp
import sys

import numpy as np
import pytest
import torch

onnx = pytest.importorskip('onnx', reason='pip install -e .[onnx]')
ort = pytest.importorskip('onnxruntime', reason='pip install -e .[onnx]')
pytest.importorskip('onnxscript', reason='pip install -e .[onnx]')

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FCN8S = osp.join(ROOT, 'configs', 'fcn8s_vgg16_voc.py')
ATONCE = osp.join(ROOT, 'configs', 'fcn8s-atonce_vgg16_voc.py')
R50 = osp.join(ROOT, 'configs', 'fcn8s_r50_voc12aug.py')
NARROW_VGG = [
    'model.backbone.base_channels=4', 'model.backbone.fc_channels=16',
    'model.decode_head.in_channels=[16,32,16]'
]
CAFFE_MEAN = torch.tensor([104.00699, 116.66877, 122.67892]).view(1, 3, 1, 1)


def _options(pairs):
    import ast
    return {k: ast.literal_eval(v) for k, v in (p.split('=', 1) for p in pairs)}


@pytest.fixture(scope='module')
def tool(load_tool):
    return load_tool('deployment/pytorch2onnx')


@pytest.fixture(scope='module')
def fcn8s_cli(tool, tmp_path_factory):
    """The tool run as from the command line on a narrow FCN-8s and a checkpoint saved here:
    ``(exit status, what it printed, the PyTorch model, the .onnx file)``."""
    tmp = tmp_path_factory.mktemp('onnx')
    model = tool.build_model(tool.load_config(FCN8S, _options(NARROW_VGG)), None)
    ckpt, out = str(tmp / 'fcn8s.pth'), str(tmp / 'fcn8s.onnx')
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    argv = [
        FCN8S, ckpt, '--out', out, '--shape', '64', '80', '--check-shapes', '64x80', '97x131',
        '1x1', '2x31x17', '--cfg-options'
    ] + NARROW_VGG
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = tool.main(argv)
    return status, printed.getvalue(), model.eval(), out


def test_cli_exports_and_checks_other_sizes(fcn8s_cli):
    status, printed, _, out = fcn8s_cli
    assert status == 0, printed
    assert 'height >= 1, width >= 1' in printed
    for size in ('1x3x64x80', '1x3x97x131', '1x3x1x1', '2x3x31x17'):
        line = next(line for line in printed.splitlines() if line.strip().startswith(size))
        assert line.endswith('OK'), line
    assert osp.isfile(out)


def test_graph_io_names_and_dynamic_dims(fcn8s_cli):
    status, *_, out = fcn8s_cli
    assert status == 0
    model = onnx.load(out)

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert [v.name for v in model.graph.input] == ['image']  # weights are not inputs
    assert [v.name for v in model.graph.output] == ['logits']
    assert dims(model.graph.input[0]) == ['batch', 3, 'height', 'width']
    assert dims(model.graph.output[0]) == ['batch', 21, 'height', 'width']
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta['min_height'] == meta['min_width'] == '1'


def test_normalisation_is_inside_the_graph(fcn8s_cli):
    """Raw 0-255 BGR pixels in; the Caffe mean is subtracted by the graph (std 1, no swap)."""
    status, _, model, out = fcn8s_cli
    assert status == 0
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


def test_atonce_matches_pytorch_at_many_sizes(tool, tmp_path):
    model = tool.build_model(tool.load_config(ATONCE, _options(NARROW_VGG)), None)
    assert model.decode_head.fusions[0].skip_scale == 0.01  # pool4, then pool3: 1e-4
    with torch.no_grad():  # large skip scores, so that the scaled skips show in the logits
        for fusion in model.decode_head.fusions:
            fusion.score.weight.normal_(std=1 / fusion.skip_scale)
    out = str(tmp_path / 'atonce.onnx')
    info = tool.export_onnx(tool.ONNXSegmentor(model).eval(), out, (50, 50))
    assert info['min_size'] == (1, 1)
    rows = tool.check_onnx(out, model, [(1, 50, 50), (1, 1, 1), (1, 97, 131), (2, 20, 57),
                                        (1, 375, 500)])
    assert all(r['ok'] for r in rows), rows
    assert [r['out_shape'][-2:] for r in rows] == [(50, 50), (1, 1), (97, 131), (20, 57),
                                                   (375, 500)]


def test_resnet_config_with_channel_swap(tool, tmp_path):
    """mmseg's ResNet (depth 18 for speed) + our head: BGR->RGB and ImageNet mean/std inside."""
    cfg = tool.load_config(
        R50, {
            'model.backbone.depth': 18,
            'model.decode_head.in_channels': (128, 256, 512),
            'model.auxiliary_head.in_channels': 256
        })
    model = tool.build_model(cfg, None)
    wrapper = tool.ONNXSegmentor(model).eval()
    assert wrapper.swap_channels and wrapper.normalize
    out = str(tmp_path / 'r18.onnx')
    tool.export_onnx(wrapper, out, (40, 56))
    rows = tool.check_onnx(out, model, [(1, 33, 47), (1, 1, 1), (2, 61, 29)])
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
    assert err == f'tools/deployment/pytorch2onnx.py: checkpoint file {missing} does not exist'
    assert tool.main([str(tmp_path / 'nope.py'), missing, '--out', out]) == 1
    assert 'config file' in capsys.readouterr().err
    assert not osp.exists(out)
    with pytest.raises(tool.ExportError, match='NxHxW'):
        tool.parse_shape('3x')


def test_missing_onnxruntime_says_how_to_install(tool, tmp_path, capsys, monkeypatch):
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'')
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # import fails as if not installed
    assert tool.main([FCN8S, str(ckpt), '--out', str(tmp_path / 'x.onnx')]) == 1
    assert capsys.readouterr().err.strip() == (
        'tools/deployment/pytorch2onnx.py: onnxruntime is not installed: pip install -e .[onnx]')


def test_a_baked_in_size_is_an_error_not_a_static_graph(tool, tmp_path, monkeypatch):
    """An int() of a traced size would fix the graph to the traced size: refused, loudly."""
    from fcn_plugin.models.layers import feature_maps
    original = feature_maps.FeatureMaps.__new__

    def baking_new(cls, maps, coord_maps=None, input_size=None):
        self = original(cls, maps, coord_maps, input_size)
        self.input_size = None if input_size is None else tuple(int(s) for s in input_size)
        return self

    monkeypatch.setattr(feature_maps.FeatureMaps, '__new__', baking_new)
    model = tool.build_model(tool.load_config(FCN8S, _options(NARROW_VGG)), None)
    with pytest.raises(tool.ExportError, match='dynamic sizes'):
        tool.export_onnx(tool.ONNXSegmentor(model).eval(), str(tmp_path / 'x.onnx'), (64, 80))
    assert not (tmp_path / 'x.onnx').exists()
