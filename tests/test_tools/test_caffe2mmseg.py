"""caffe2mmseg: .caffemodel files written here by a hand-made protobuf writer (no Caffe, no
protobuf), in the current ``layer`` and the legacy V1 ``layers`` encodings, packed and unpacked,
float and double data, convert to checkpoints that give the original network's logits."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS

from fcn_plugin.converters.caffe_proto import CaffeModelError, parse_net
from fcn_plugin.converters.plain_fcn import PlainFCN
from fcn_plugin.converters.torchfcn_keys import torchfcn_to_mmseg

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'model_converters', 'caffe2mmseg.py')


@pytest.fixture(scope='module')
def caffe2mmseg(load_tool):
    return load_tool('model_converters/caffe2mmseg')


# --------------------------------------------------------------------------------------------
# A minimal protobuf writer (wire format by hand) for caffe.proto's NetParameter.
# --------------------------------------------------------------------------------------------
V1_TYPES = {
    'Convolution': 4,
    'Deconvolution': 39,
    'InnerProduct': 14,
    'ReLU': 18,
    'Pooling': 17,
    'Dropout': 6,
    'Eltwise': 25,
    'Softmax': 20,
    'SoftmaxWithLoss': 21,
    'Data': 5,
    'Power': 26
}


def varint(n):
    n &= (1 << 64) - 1  # negative int64: two's complement, 10 bytes
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(number, wire):
    return varint(number << 3 | wire)


def f_varint(number, value):
    return key(number, 0) + varint(value)


def f_bytes(number, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return key(number, 2) + varint(len(payload)) + payload


def f_fixed32(number, value):
    return key(number, 5) + np.float32(value).tobytes()


def f_fixed64(number, value):
    return key(number, 1) + np.float64(value).tobytes()


def repeated_unpacked(number, values, dtype):
    """One field per value: key byte (fixed32 for float, fixed64 for double) + its bytes."""
    raw = np.ascontiguousarray(values, dtype=dtype).reshape(-1).view(np.uint8)
    size = np.dtype(dtype).itemsize
    tag = key(number, 5 if size == 4 else 1)
    assert len(tag) == 1
    records = np.empty((raw.size // size, size + 1), np.uint8)
    records[:, 0] = tag[0]
    records[:, 1:] = raw.reshape(-1, size)
    return records.tobytes()


def blob(array, data='packed', legacy=False):
    """A BlobProto. ``data``: 'packed'/'unpacked' floats, 'packed-double'/'unpacked-double';
    ``legacy``: num/channels/height/width (4-d, leading ones) instead of BlobShape."""
    array = np.asarray(array)
    if legacy:
        dims = (1, ) * (4 - array.ndim) + array.shape
        out = b''.join(f_varint(i, d) for i, d in enumerate(dims, start=1))
    else:  # BlobShape, dims packed int64
        out = f_bytes(7, f_bytes(1, b''.join(varint(d) for d in array.shape)))
    double = data.endswith('-double')
    number, dtype = (8, '<f8') if double else (5, '<f4')
    if data.startswith('packed'):
        out += f_bytes(number, np.ascontiguousarray(array, dtype=dtype).tobytes())
    else:
        out += repeated_unpacked(number, array, dtype)
    return out + f_bytes(6, b'')  # an empty packed diff: skipped


def layer(name, type_, blobs=(), encoding='layer'):
    """LayerParameter (``layer``) or V1LayerParameter (``layers``) with some fields that the
    reader must skip (bottom/top, a ParamSpec with a fixed32, a nested *_param message)."""
    if encoding == 'layer':
        out = f_bytes(1, name) + f_bytes(2, type_) + f_bytes(3, 'bottom') + f_bytes(4, name)
        out += f_bytes(6, f_fixed32(3, 1.0) + f_fixed32(4, 0.0))  # param { lr_mult decay_mult }
        out += b''.join(f_bytes(7, b) for b in blobs)
        return f_bytes(100, out + f_bytes(106, f_varint(1, 7)) + f_varint(10, 1))
    out = f_bytes(2, 'bottom') + f_bytes(3, name) + f_bytes(4, name) + f_varint(5, V1_TYPES[type_])
    out += b''.join(f_bytes(6, b) for b in blobs)
    out += f_fixed32(7, 1.0) + f_fixed32(7, 2.0)  # blobs_lr, unpacked
    return f_bytes(2, out + f_bytes(10, f_varint(1, 7)))


def net(name, layers, legacy_inputs=False):
    out = f_bytes(1, name)
    if legacy_inputs:  # deploy nets: input: "data" input_dim: 1 3 224 224
        out += f_bytes(3, 'data') + b''.join(f_varint(4, d) for d in (1, 3, 224, 224))
    out += f_fixed64(99, 0.5)  # an unknown fixed64 field: skipped
    return out + b''.join(layers)


def fcn_caffemodel(plain, encoding='layer', data='packed', scale_blobs=True):
    """The reference net's layers (parameter-free ones included) holding ``plain``'s weights."""
    legacy = encoding == 'layers'
    state = {k: v.numpy() for k, v in plain.state_dict().items()}
    modes = ['packed', 'unpacked', 'packed-double', 'unpacked-double']
    count = [0]

    def blobs(name):
        out = []
        for param in ('weight', 'bias'):
            if f'{name}.{param}' in state:
                mode = data if data != 'mixed' else modes[count[0] % 4]
                count[0] += 1
                out.append(blob(state[f'{name}.{param}'], mode, legacy))
        return out

    def lay(name, type_, blob_list=()):
        if legacy and type_ not in V1_TYPES:  # no V1 enum for Crop/Python/Scale
            type_ = {'Scale': 'Power'}.get(type_, 'Dropout')
        return layer(name, type_, blob_list, encoding)

    layers = [lay('data', 'Python')]
    for s, n in enumerate((2, 2, 3, 3, 3), start=1):
        for i in range(1, n + 1):
            layers += [
                lay(f'conv{s}_{i}', 'Convolution', blobs(f'conv{s}_{i}')),
                lay(f'relu{s}_{i}', 'ReLU')
            ]
        layers.append(lay(f'pool{s}', 'Pooling'))
    for fc in ('fc6', 'fc7'):
        layers += [
            lay(fc, 'Convolution', blobs(fc)),
            lay(f'relu{fc[-1]}', 'ReLU'),
            lay(f'drop{fc[-1]}', 'Dropout')
        ]
    layers.append(lay('score_fr', 'Convolution', blobs('score_fr')))
    atonce = plain.variant == '8s-atonce'
    if plain.variant == '32s':
        layers.append(lay('upscore', 'Deconvolution', blobs('upscore')))
    else:
        layers.append(lay('upscore2', 'Deconvolution', blobs('upscore2')))
        for pool, scale, up in (('pool4', 0.01, 'upscore_pool4'), ('pool3', 1e-4, None)):
            if atonce:
                c = state[f'score_{pool}.weight'].shape[1]
                layers.append(
                    lay(f'scale_{pool}', 'Scale',
                        [blob(np.full(c, scale, np.float32), 'packed', legacy)]
                        if scale_blobs else []))
            layers += [
                lay(f'score_{pool}', 'Convolution', blobs(f'score_{pool}')),
                lay(f'score_{pool}c', 'Crop'),
                lay(f'fuse_{pool}', 'Eltwise')
            ]
            if plain.variant == '16s':
                layers.append(lay('upscore16', 'Deconvolution', blobs('upscore16')))
                break
            if up:
                layers.append(lay(up, 'Deconvolution', blobs(up)))
        else:
            layers.append(lay('upscore8', 'Deconvolution', blobs('upscore8')))
    layers += [lay('score', 'Crop'), lay('loss', 'SoftmaxWithLoss')]
    return net(f'voc-fcn{plain.variant}', layers)


def random_plain(variant, n_class=5, seed=0):
    torch.manual_seed(seed)
    plain = PlainFCN(variant, n_class=n_class, width=4, fc=16).eval()
    with torch.no_grad():
        for name, p in plain.named_parameters():
            if 'upscore' not in name:
                p.copy_(torch.randn(p.shape) * (0.2 if p.dim() > 1 else 0.05))
        for name, b in plain.named_parameters():  # a non-bilinear upsampling must survive too
            if 'upscore' in name:
                b.add_(torch.rand(b.shape) * 0.01)
    return plain


@pytest.fixture
def convert(caffe2mmseg):
    """``convert(tmp_path, content, *args, name='net.caffemodel')``: the tool on ``content``;
    the checkpoint it writes."""

    def run(tmp_path, content, *args, name='net.caffemodel'):
        src, dst = tmp_path / name, tmp_path / 'out.pth'
        src.write_bytes(content)
        caffe2mmseg.main([str(src), str(dst), *args])
        return torch.load(dst, map_location='cpu', weights_only=True)

    return run


@pytest.fixture
def error_of(caffe2mmseg):
    """``error_of(tmp_path, content, *args, name='net.caffemodel')``: the tool's error message
    on ``content`` (it writes nothing)."""

    def run(tmp_path, content, *args, name='net.caffemodel'):
        src, dst = tmp_path / name, tmp_path / 'refused.pth'
        src.write_bytes(content)
        with pytest.raises(SystemExit) as info:
            caffe2mmseg.main([str(src), str(dst), *args])
        assert not dst.exists()
        message = str(info.value.code)
        assert message.startswith('caffe2mmseg: error: ') and str(src) in message
        return message

    return run


@pytest.fixture
def narrow_model(model_cfg):
    """``narrow_model(variant, n_class=5)``: the narrow mmseg FCN of the written nets."""
    return lambda variant, n_class=5: MODELS.build(
        model_cfg(variant, width=4, fc=16, num_classes=n_class)).eval()


# --------------------------------------------------------------------------------------------
FCN_CASES = [
    pytest.param(variant, encoding, data, id=f'{variant}-{name}')
    for variant in ('32s', '16s', '8s', '8s-atonce')
    for encoding, data, name in (('layer', 'packed', 'layer-packed'),
                                 ('layers', 'unpacked', 'V1layers-legacyshapes-unpacked'),
                                 ('layer', 'mixed', 'layer-float-double-packed-unpacked'))
    if data != 'mixed' or variant in ('16s', '8s-atonce')  # two variants suffice for mixed
]


@pytest.mark.parametrize('variant,encoding,data', FCN_CASES)
def test_fcn_caffemodel_gives_plain_fcn_logits(tmp_path, capsys, variant, encoding, data,
                                               assert_matches_plain, convert, narrow_model):
    plain = random_plain(variant)
    checkpoint = convert(tmp_path, fcn_caffemodel(plain, encoding, data))
    out = capsys.readouterr().out
    assert f'FCN-{variant}: wrote' in out and 'ReLU x15' in out
    assert checkpoint['meta']['fcn_variant'] == variant
    assert checkpoint['meta']['dataset_meta']['classes'] == [str(i) for i in range(5)]
    state_dict = checkpoint['state_dict']
    expected = torchfcn_to_mmseg(plain.state_dict())[0]
    assert state_dict.keys() == expected.keys()
    for k, v in expected.items():
        assert v.dtype == state_dict[k].dtype == torch.float32
        assert torch.equal(state_dict[k], v), k  # float32 -> caffemodel -> float32 is exact

    model = narrow_model(variant)
    model.load_state_dict(state_dict, strict=True)
    assert_matches_plain(model, plain, ((1, 1), (23, 41)))


def test_atonce_without_scale_blobs_and_explicit_variants(tmp_path, capsys, convert, error_of):
    plain = random_plain('8s-atonce')
    # Scale layers stored without blobs: still the at-once net (detected by name)
    assert convert(tmp_path,
                   fcn_caffemodel(plain, scale_blobs=False))['meta']['fcn_variant'] == '8s-atonce'
    content = fcn_caffemodel(plain)
    assert convert(tmp_path, content, '--variant', '8s-atonce')['meta']['fcn_variant'] == \
        '8s-atonce'
    assert 'the net is FCN-8s-atonce' in error_of(tmp_path, content, '--variant', '8s')
    # no scale layers at all: FCN-8s, or at-once when asked (same parameters)
    plain_8s = random_plain('8s')
    content = fcn_caffemodel(plain_8s)
    assert convert(tmp_path, content)['meta']['fcn_variant'] == '8s'
    assert convert(tmp_path, content, '--variant',
                   '8s-atonce')['meta']['fcn_variant'] == '8s-atonce'
    assert 'note: no scale_pool4/scale_pool3' in capsys.readouterr().out
    assert 'the net is FCN-8s' in error_of(tmp_path, content, '--variant', '16s')
    assert 'the net is an FCN' in error_of(tmp_path, content, '--variant', 'vgg16')


def test_atonce_scale_other_than_the_config_is_refused(tmp_path, error_of):
    plain = random_plain('8s-atonce')
    content = fcn_caffemodel(plain).replace(  # pool3's 1e-4 blob -> 2e-4
        np.full(16, 1e-4, np.float32).tobytes(),
        np.full(16, 2e-4, np.float32).tobytes())
    message = error_of(tmp_path, content)
    assert "'scale_pool3' scales by [0.0002]" in message and '0.0001' in message
    one_scale = fcn_caffemodel(plain).replace(
        layer('scale_pool3', 'Scale', [blob(np.full(16, 1e-4, np.float32))]), b'')
    assert "only ['scale_pool4'] of the at-once scale layers" in error_of(tmp_path, one_scale)


def torchvision_like_vgg16(width=4, fc=16, classes=10):
    gen = torch.Generator().manual_seed(0)
    layers, c_in = {}, 3
    for s, n in enumerate((2, 2, 3, 3, 3), start=1):
        c = width * min(2**(s - 1), 8)
        for i in range(1, n + 1):
            layers[f'conv{s}_{i}'] = (torch.randn(c, c_in, 3, 3,
                                                  generator=gen), torch.randn(c, generator=gen))
            c_in = c
    for name, (o, n) in (('fc6', (fc, c_in * 49)), ('fc7', (fc, fc)), ('fc8', (classes, fc))):
        layers[name] = (torch.randn(o, n, generator=gen), torch.randn(o, generator=gen))
    return layers


def vgg_caffemodel(params, encoding, fc_as_conv=False):
    legacy = encoding == 'layers'
    layers = [layer('data', 'Data', (), encoding)]
    for name, (w, b) in params.items():
        w = w.numpy()
        if name.startswith('fc'):
            if fc_as_conv:  # ilsvrc-nets/vgg16-fcn: fc layers convolutionalised
                w = w.reshape(w.shape[0], -1, 7, 7) if name == 'fc6' else w[:, :, None, None]
            type_ = 'Convolution' if fc_as_conv else 'InnerProduct'
        else:
            type_ = 'Convolution'
        layers.append(
            layer(name, type_, [blob(w, 'packed', legacy),
                                blob(b.numpy(), 'packed', legacy)], encoding))
        layers.append(layer(f'relu_{name}', 'ReLU', (), encoding))
    layers.append(layer('prob', 'Softmax', (), encoding))
    return net('VGG_ILSVRC_16_layers', layers, legacy_inputs=legacy)


@pytest.mark.parametrize(
    'encoding,fc_as_conv', [('layers', False), ('layer', True)],
    ids=['V1layers-InnerProduct', 'layer-convolutionalised'])
def test_vgg16_classifier_gives_backbone_checkpoint(tmp_path, capsys, encoding, fc_as_conv, convert,
                                                    narrow_model):
    params = torchvision_like_vgg16()
    checkpoint = convert(tmp_path, vgg_caffemodel(params, encoding, fc_as_conv), '--variant',
                         'vgg16')
    assert 'VGG16 classifier (fc6/fc7 as 7x7/1x1 convolutions, fc8 dropped): wrote 30 tensors' \
        in capsys.readouterr().out
    assert checkpoint['meta']['converted_from'].endswith('net.caffemodel')
    model = narrow_model('8s')
    assert load_checkpoint(model.backbone, str(tmp_path / 'out.pth'), strict=True) is not None
    assert torch.equal(model.backbone.conv5_3.weight, params['conv5_3'][0])
    assert torch.equal(model.backbone.fc7.weight[:, :, 0, 0], params['fc7'][0])
    # fc6 as a 7x7 convolution on a 7x7 pool5 computes exactly the InnerProduct
    pool5 = torch.randn(2, 32, 7, 7)
    fc6 = torch.nn.functional.linear(pool5.flatten(1), *params['fc6'])
    torch.testing.assert_close(model.backbone.fc6(pool5).flatten(1), fc6, rtol=1e-4, atol=1e-4)


def test_truncated_caffemodel_is_one_clear_error(tmp_path, error_of):
    content = fcn_caffemodel(random_plain('16s'))
    for cut in (len(content) // 3, len(content) // 2, len(content) - 3, 40):
        message = error_of(tmp_path, content[:cut], name='fcn16s.caffemodel')
        # the reason, beyond the generic "(truncated, corrupt or another format?)" hint
        reason = message.replace('truncated, corrupt or another format?', '')
        assert 'truncated' in reason, message
    # and from the command line: one line on stderr, no traceback, nothing written
    src, dst = tmp_path / 'fcn16s.caffemodel', tmp_path / 'out.pth'
    src.write_bytes(content[:len(content) // 2])
    proc = subprocess.run([sys.executable, TOOL, str(src), str(dst)],
                          capture_output=True,
                          text=True)
    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert str(src) in proc.stderr and 'truncated' in proc.stderr
    assert not dst.exists()


def test_command_line_voc_fcn8s_atonce(tmp_path, narrow_model):
    plain = random_plain('8s-atonce', n_class=21)
    src, dst = tmp_path / 'fcn8s-atonce-pascal.caffemodel', tmp_path / 'fcn8s-atonce.pth'
    src.write_bytes(fcn_caffemodel(plain, 'layers', 'unpacked'))
    proc = subprocess.run([sys.executable, TOOL, str(src), str(dst)],
                          capture_output=True,
                          text=True,
                          check=True)
    assert "net 'voc-fcn8s-atonce' ('layers' encoding)" in proc.stdout
    assert 'FCN-8s-atonce: wrote 39 tensors' in proc.stdout
    checkpoint = torch.load(dst, map_location='cpu', weights_only=True)
    assert checkpoint['meta']['dataset_meta']['classes'][0] == 'background'
    narrow_model('8s-atonce', 21).load_state_dict(checkpoint['state_dict'], strict=True)


def test_other_files_are_refused(tmp_path, error_of, caffe2mmseg):
    torch.save({'conv1_1.weight': torch.zeros(1)}, tmp_path / 'a.pth')
    pth = (tmp_path / 'a.pth').read_bytes()
    for name, content in (('model.pth', pth), ('deploy.prototxt', b'name: "VGG"\nlayer {\n'),
                          ('empty.caffemodel', b'')):
        assert 'is not a valid .caffemodel' in error_of(tmp_path, content, name=name)
    with pytest.raises(SystemExit, match='caffemodel not found: .*missing.caffemodel'):
        caffe2mmseg.main([str(tmp_path / 'missing.caffemodel'), str(tmp_path / 'o.pth')])


def test_other_nets_are_refused(tmp_path, error_of):
    w = blob(np.zeros((4, 3, 3, 3), np.float32))
    b = blob(np.zeros(4, np.float32))
    lenet = net('LeNet',
                [layer('conv1', 'Convolution', [w, b]),
                 layer('ip1', 'InnerProduct', [w, b])])
    assert "nor VGG16 have: ['conv1', 'ip1']" in error_of(tmp_path, lenet)
    trunk_only = net('x', [layer('conv1_1', 'Convolution', [w, b])])
    assert "neither an FCN" in error_of(tmp_path, trunk_only)
    assert "layers with parameters: ['conv1_1']" in error_of(tmp_path, trunk_only)
    # an FCN with a layer missing (a cut at a layer boundary) or a foreign one
    plain = random_plain('32s')
    full = fcn_caffemodel(plain)
    fc7 = layer('fc7', 'Convolution', [blob(p.detach().numpy()) for p in plain.fc7.parameters()])
    no_fc7 = full.replace(fc7, b'')
    assert len(no_fc7) < len(full)
    assert "missing layers ['fc7'] (is the file truncated?)" in error_of(tmp_path, no_fc7)
    with_fc8 = full + layer('fc8', 'Convolution', [w, b])
    assert 'neither an FCN nor the VGG16 classifier' in error_of(tmp_path, with_fc8)
    two_finals = full + layer('upscore8', 'Deconvolution', [w])
    assert "exactly one final upsampling layer" in error_of(tmp_path, two_finals)


def test_reader_fields_and_shapes():
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    # int64 dims, several shape/data chunks merged as protobuf does, legacy layers' V0 wrapper
    msg = net('n', [
        layer('a', 'Convolution', [blob(data), blob(data, 'unpacked-double')]),
        f_bytes(2, f_bytes(1,
                           f_bytes(1, 'v0') + f_bytes(2, 'conv') + f_bytes(50, blob(data)))),
        f_bytes(
            100,
            f_bytes(1, 'b') + f_bytes(
                7,
                f_bytes(7, f_varint(1, 2)) + f_bytes(7, f_varint(1, 3)) +
                f_bytes(5, data[0].tobytes()) + repeated_unpacked(5, data[1], '<f4') +
                f_bytes(5, b''))),
    ])
    parsed = parse_net(msg)
    assert parsed.name == 'n' and parsed.format == 'layer+layers'
    a, v0, b = parsed.layers
    assert (a.name, a.type, v0.name, v0.type, b.name, b.type) == ('a', 'Convolution', 'v0',
                                                                  'Convolution', 'b', '')
    assert a.blobs[0].dtype == np.float32 and a.blobs[1].dtype == np.float64
    for array in (a.blobs[0], a.blobs[1], v0.blobs[0], b.blobs[0]):
        np.testing.assert_array_equal(array, data)
    with pytest.raises(
            CaffeModelError, match=r"layer 'c', blob 0: a blob of shape \(4,\) "
            'has 6 values'):
        parse_net(
            net('n', [
                f_bytes(
                    100,
                    f_bytes(1, 'c') +
                    f_bytes(7,
                            f_bytes(7, f_varint(1, 4)) + f_bytes(5, data.tobytes())))
            ]))
    with pytest.raises(CaffeModelError, match='wire type 3'):
        parse_net(net('n', [layer('a', 'ReLU')]) + key(5, 3))
