"""fcn_plugin.apis.convert_weights and tools/model_converters/: pytorch-fcn, VGG and Caffe weights
give the original network's logits; other files are refused with one clear error, nothing written.

The .caffemodel files are written here by a hand-made protobuf writer (no Caffe, no protobuf), in
the current ``layer`` and the legacy V1 ``layers`` encodings, packed and unpacked, float and
double data. The original network is :class:`PlainFCN` (random weights: conftest's
``randomize``); the mmseg models are conftest's ``build``/``model_cfg`` at width 4, fc 16.
"""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmseg.apis import init_model
from mmseg.registry import MODELS

from fcn_plugin.apis.convert_weights import convert_caffe, convert_torchfcn, convert_vgg
from fcn_plugin.converters import ConversionError
from fcn_plugin.converters.caffe_proto import CaffeModelError, parse_net
from fcn_plugin.converters.plain_fcn import PlainFCN, plain_fcn_like
from fcn_plugin.converters.torchfcn_keys import torchfcn_to_mmseg

WIDTH, FC = 4, 16
REAL_CONFIGS = {
    '32s': 'fcn32s_vgg16_voc.py',
    '16s': 'fcn16s_vgg16_voc.py',
    '8s': 'fcn8s_vgg16_voc.py',
    '8s-atonce': 'fcn8s-atonce_vgg16_voc.py'
}


def assert_rel_close(actual, expected, rtol=1e-4):
    err = (actual - expected).abs().max() / expected.abs().max()
    assert err <= rtol, f'max relative difference {err:.2e}'


def load(path):
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def random_plain(randomize):
    """``random_plain(variant, n_class=5, seed=0)``: a narrow PlainFCN with random weights, its
    fixed bilinear upsampling perturbed too (a non-bilinear upsampling must survive)."""

    def make(variant, n_class=5, seed=0):
        plain = randomize(PlainFCN(variant, n_class=n_class, width=WIDTH, fc=FC), seed)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in plain.named_parameters():
                if 'upscore' in name:
                    p.add_(torch.rand(p.shape, generator=gen) * 0.01)
        return plain

    return make


def vgg16_layers(classes=10, seed=0):
    """A random narrow VGG16 classifier: {name: (weight, bias)}, conv1_1 ... conv5_3, then fc6,
    fc7, fc8 as (out, in) matrices."""
    gen = torch.Generator().manual_seed(seed)
    layers, c_in = {}, 3
    for s, n in enumerate((2, 2, 3, 3, 3), start=1):
        c = WIDTH * min(2**(s - 1), 8)
        for i in range(1, n + 1):
            layers[f'conv{s}_{i}'] = (torch.randn(c, c_in, 3, 3,
                                                  generator=gen), torch.randn(c, generator=gen))
            c_in = c
    for name, (o, n) in (('fc6', (FC, c_in * 49)), ('fc7', (FC, FC)), ('fc8', (classes, FC))):
        layers[name] = (torch.randn(o, n, generator=gen), torch.randn(o, generator=gen))
    return layers


def torchvision_layout(layers):
    """The same weights as torchvision's state dict: ``features.N`` (conv, relu, a pool after
    each stage), ``classifier.0/3/6`` (fc6, fc7, fc8)."""
    state, index, stage = {}, 0, '1'
    for name, (w, b) in layers.items():
        if name.startswith('conv'):
            if name[4] != stage:
                index, stage = index + 1, name[4]
            state[f'features.{index}.weight'], state[f'features.{index}.bias'] = w, b
            index += 2
        else:
            i = {'fc6': 0, 'fc7': 3, 'fc8': 6}[name]
            state[f'classifier.{i}.weight'], state[f'classifier.{i}.bias'] = w, b
    return state


def assert_fc6_is_the_classifier(backbone, layers):
    """fc6 as a 7x7 convolution on a 7x7 pool5 computes exactly the fully connected layer."""
    pool5 = torch.randn(2, 8 * WIDTH, 7, 7)
    fc6 = torch.nn.functional.linear(pool5.flatten(1), *layers['fc6'])
    torch.testing.assert_close(backbone.fc6(pool5).flatten(1), fc6, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------- pytorch-fcn
@pytest.mark.parametrize('variant', ['32s', '16s', '8s', '8s-atonce'])
def test_torchfcn_checkpoint_gives_same_logits(tmp_path, variant, model_cfg, randomize):
    plain = randomize(PlainFCN(variant, n_class=21, width=WIDTH, fc=FC))
    src, dst = tmp_path / 'torchfcn.pth', tmp_path / 'mmseg.pth'
    torch.save(plain.state_dict(), src)
    result = convert_torchfcn(str(src), str(dst))
    plain_variant = variant.replace('-atonce', '')  # at-once has FCN-8s's layers
    assert (result.variant, result.num_tensors) == (plain_variant, len(plain.state_dict()))
    assert result.messages == [f'FCN-{plain_variant}: wrote {result.num_tensors} tensors to {dst}']
    assert load(dst)['meta']['fcn_variant'] == plain_variant

    config = tmp_path / 'cfg.py'
    Config(
        dict(
            model=model_cfg(variant, width=WIDTH, fc=FC),
            custom_imports=dict(imports=['fcn_plugin']))).dump(str(config))
    model = init_model(str(config), str(dst), device='cpu')
    x = torch.randn(1, 3, 37, 45)
    with torch.no_grad():
        expected = plain(x)
        result = model.predict(x)[0]
    assert result.seg_logits.data.shape == (21, 37, 45)
    assert_rel_close(result.seg_logits.data, expected[0])
    assert torch.equal(result.pred_sem_seg.data[0], expected[0].argmax(0))
    assert model.dataset_meta['classes'][0] == 'background'


@pytest.mark.parametrize('variant', list(REAL_CONFIGS))
def test_full_size_key_layout(repo_root, variant):
    """At the real widths (134M parameters, on the meta device: shapes without data), the
    pytorch-fcn keys map onto exactly the keys and shapes of the recipe config's model."""
    with torch.device('meta'):
        plain = PlainFCN(variant)
        model = MODELS.build(
            Config.fromfile(osp.join(repo_root, 'configs', REAL_CONFIGS[variant])).model)
    converted, found = torchfcn_to_mmseg(plain.state_dict())
    expected = model.state_dict()
    assert found == variant.replace('-atonce', '')
    assert sorted(converted) == sorted(expected)
    assert {k: tuple(v.shape) for k, v in converted.items()} == \
        {k: tuple(v.shape) for k, v in expected.items()}
    assert converted['backbone.fc6.weight'].shape == (4096, 512, 7, 7)


def test_recipe_config_trainer_checkpoint_gives_same_logits(tmp_path, repo_root, randomize):
    """configs/fcn8s_vgg16_voc.py (narrowed) from a pytorch-fcn trainer checkpoint: exact."""
    plain = randomize(PlainFCN('8s', width=WIDTH, fc=FC), seed=1)
    src, dst = tmp_path / 'fcn8s.pth', tmp_path / 'fcn8s_mmseg.pth'
    torch.save({'model_state_dict': plain.state_dict(), 'arch': 'FCN8s'}, src)  # trainer format
    assert convert_torchfcn(str(src), str(dst)).variant == '8s'
    config = tmp_path / 'fcn8s_narrow.py'
    config.write_text(f"_base_ = [{osp.join(repo_root, 'configs/fcn8s_vgg16_voc.py')!r}]\n"
                      f'model = dict(backbone=dict(base_channels={WIDTH}, fc_channels={FC}), '
                      f'decode_head=dict(in_channels=({4 * WIDTH}, {8 * WIDTH}, {FC})))\n')
    model = init_model(str(config), str(dst), device='cpu')
    x = torch.randn(1, 3, 20, 27)
    with torch.no_grad():
        assert_rel_close(model.predict(x)[0].seg_logits.data, plain(x)[0])


def test_plain_fcn_like_copies_the_model(build, randomize):
    model = randomize(build('16s'))
    plain = plain_fcn_like(model)
    x = torch.randn(2, 3, 30, 22, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # within 1e-5 of the largest logit (elementwise, 1e-5 is flaky)
        assert_rel_close(plain(x), model._forward(x), rtol=1e-5)


def test_torchfcn_converter_rejects_other_checkpoints(tmp_path):
    src, dst = tmp_path / 'other.pth', tmp_path / 'out.pth'
    torch.save({'features.0.weight': torch.zeros(1)}, src)
    with pytest.raises(ConversionError, match=f'^{src}: not a pytorch-fcn'):
        convert_torchfcn(str(src), str(dst))
    assert not dst.exists()


# ------------------------------------------------------------------------------------------ VGG
def test_vgg_converter_gives_backbone_of_classifier(tmp_path, build):
    layers = vgg16_layers()
    src, dst = tmp_path / 'vgg16.pth', tmp_path / 'vgg16_mmseg.pth'
    torch.save(torchvision_layout(layers), src)
    result = convert_vgg(str(src), str(dst))
    assert (result.variant, result.num_tensors) == ('vgg16', 30)
    assert result.messages == [f'wrote 30 tensors to {dst}']
    model = build('8s', width=WIDTH, fc=FC)
    assert load_checkpoint(model.backbone, str(dst), strict=True) is not None
    assert torch.equal(model.backbone.conv5_3.weight, layers['conv5_3'][0])
    assert_fc6_is_the_classifier(model.backbone, layers)


def test_vgg_checkpoint_through_init_cfg(tmp_path, model_cfg):
    layers = vgg16_layers()
    src, dst = tmp_path / 'vgg16.pth', tmp_path / 'vgg16_mmseg.pth'
    torch.save(torchvision_layout(layers), src)
    convert_vgg(str(src), str(dst))
    cfg = model_cfg('8s', width=WIDTH, fc=FC)
    cfg.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(dst))
    model = MODELS.build(cfg)
    model.init_weights()
    assert torch.equal(model.backbone.conv1_1.weight, layers['conv1_1'][0])
    assert model.decode_head.conv_seg.weight.abs().sum() == 0


def test_vgg_converter_rejects_other_checkpoints(tmp_path, random_plain):
    src, dst = tmp_path / 'fcn.pth', tmp_path / 'out.pth'
    torch.save(random_plain('32s').state_dict(), src)
    with pytest.raises(ConversionError, match=f'^{src}: not a torchvision-layout VGG'):
        convert_vgg(str(src), str(dst))
    assert not dst.exists()


# ------------------------------------------------------------------------------------ Caffe
# A minimal protobuf writer (wire format by hand) for caffe.proto's NetParameter.
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


@pytest.fixture
def convert():
    """``convert(tmp_path, content, variant='auto', name='net.caffemodel')``: convert_caffe on
    ``content`` (its messages printed as they come); the checkpoint it writes."""

    def run(tmp_path, content, variant='auto', name='net.caffemodel'):
        src, dst = tmp_path / name, tmp_path / 'out.pth'
        src.write_bytes(content)
        result = convert_caffe(str(src), str(dst), variant, log=print)
        checkpoint = load(dst)
        assert result.num_tensors == len(checkpoint['state_dict'])
        assert result.variant == checkpoint['meta'].get('fcn_variant', 'vgg16')
        assert result.messages[0].startswith(f'read {src}: net ')
        assert result.messages[-1].endswith(f'wrote {result.num_tensors} tensors to {dst}')
        return checkpoint

    return run


@pytest.fixture
def error_of():
    """``error_of(tmp_path, content, variant='auto', name='net.caffemodel')``: the message of
    convert_caffe's error on ``content`` (it writes nothing)."""

    def run(tmp_path, content, variant='auto', name='net.caffemodel'):
        src, dst = tmp_path / name, tmp_path / 'refused.pth'
        src.write_bytes(content)
        with pytest.raises((CaffeModelError, ConversionError)) as info:
            convert_caffe(str(src), str(dst), variant)
        assert not dst.exists()
        message = str(info.value)
        assert str(src) in message and '\n' not in message
        return message

    return run


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
                                               assert_matches_plain, convert, build, random_plain):
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

    model = build(variant, width=WIDTH, fc=FC, num_classes=5)
    model.load_state_dict(state_dict, strict=True)
    assert_matches_plain(model, plain, ((1, 1), (23, 41)))


def test_atonce_without_scale_blobs_and_explicit_variants(tmp_path, capsys, convert, error_of,
                                                          random_plain):
    plain = random_plain('8s-atonce')
    # Scale layers stored without blobs: still the at-once net (detected by name)
    assert convert(tmp_path,
                   fcn_caffemodel(plain, scale_blobs=False))['meta']['fcn_variant'] == '8s-atonce'
    content = fcn_caffemodel(plain)
    assert convert(tmp_path, content, '8s-atonce')['meta']['fcn_variant'] == '8s-atonce'
    assert 'the net is FCN-8s-atonce' in error_of(tmp_path, content, '8s')
    # no scale layers at all: FCN-8s, or at-once when asked (same parameters)
    plain_8s = random_plain('8s')
    content = fcn_caffemodel(plain_8s)
    assert convert(tmp_path, content)['meta']['fcn_variant'] == '8s'
    assert convert(tmp_path, content, '8s-atonce')['meta']['fcn_variant'] == '8s-atonce'
    assert 'note: no scale_pool4/scale_pool3' in capsys.readouterr().out
    assert 'the net is FCN-8s' in error_of(tmp_path, content, '16s')
    assert 'the net is an FCN' in error_of(tmp_path, content, 'vgg16')


def test_atonce_scale_other_than_the_config_is_refused(tmp_path, error_of, random_plain):
    plain = random_plain('8s-atonce')
    content = fcn_caffemodel(plain).replace(  # pool3's 1e-4 blob -> 2e-4
        np.full(16, 1e-4, np.float32).tobytes(),
        np.full(16, 2e-4, np.float32).tobytes())
    message = error_of(tmp_path, content)
    assert "'scale_pool3' scales by [0.0002]" in message and '0.0001' in message
    one_scale = fcn_caffemodel(plain).replace(
        layer('scale_pool3', 'Scale', [blob(np.full(16, 1e-4, np.float32))]), b'')
    assert "only ['scale_pool4'] of the at-once scale layers" in error_of(tmp_path, one_scale)


@pytest.mark.parametrize(
    'encoding,fc_as_conv', [('layers', False), ('layer', True)],
    ids=['V1layers-InnerProduct', 'layer-convolutionalised'])
def test_vgg16_classifier_gives_backbone_checkpoint(tmp_path, capsys, encoding, fc_as_conv, convert,
                                                    build):
    params = vgg16_layers()
    checkpoint = convert(tmp_path, vgg_caffemodel(params, encoding, fc_as_conv), 'vgg16')
    assert 'VGG16 classifier (fc6/fc7 as 7x7/1x1 convolutions, fc8 dropped): wrote 30 tensors' \
        in capsys.readouterr().out
    assert checkpoint['meta']['converted_from'].endswith('net.caffemodel')
    model = build('8s', width=WIDTH, fc=FC)
    assert load_checkpoint(model.backbone, str(tmp_path / 'out.pth'), strict=True) is not None
    assert torch.equal(model.backbone.conv5_3.weight, params['conv5_3'][0])
    assert torch.equal(model.backbone.fc7.weight[:, :, 0, 0], params['fc7'][0])
    assert_fc6_is_the_classifier(model.backbone, params)


def test_truncated_caffemodel_is_one_clear_error(tmp_path, error_of, random_plain):
    content = fcn_caffemodel(random_plain('16s'))
    for cut in (len(content) // 3, len(content) // 2, len(content) - 3, 40):
        message = error_of(tmp_path, content[:cut], name='fcn16s.caffemodel')
        # the reason, beyond the generic "(truncated, corrupt or another format?)" hint
        reason = message.replace('truncated, corrupt or another format?', '')
        assert 'truncated' in reason, message


def test_other_files_are_refused(tmp_path, error_of):
    torch.save({'conv1_1.weight': torch.zeros(1)}, tmp_path / 'a.pth')
    pth = (tmp_path / 'a.pth').read_bytes()
    for name, content in (('model.pth', pth), ('deploy.prototxt', b'name: "VGG"\nlayer {\n'),
                          ('empty.caffemodel', b'')):
        assert 'is not a valid .caffemodel' in error_of(tmp_path, content, name=name)
    with pytest.raises(ConversionError, match='caffemodel not found: .*missing.caffemodel'):
        convert_caffe(str(tmp_path / 'missing.caffemodel'), str(tmp_path / 'o.pth'))


def test_other_nets_are_refused(tmp_path, error_of, random_plain):
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


# ------------------------------------------------------------------------------------ the tools
@pytest.fixture(scope='module')
def tools(load_tool):
    return {
        name: load_tool(f'model_converters/{name}')
        for name in ('caffe2mmseg', 'torchfcn2mmseg', 'vgg2mmseg')
    }


def test_tools_print_what_they_wrote(tmp_path, capsys, tools, random_plain, build):
    torch.save({'model_state_dict': random_plain('16s').state_dict()}, tmp_path / 'fcn.pth')
    torch.save(torchvision_layout(vgg16_layers()), tmp_path / 'vgg.pth')
    caffe = tmp_path / 'fcn8s-atonce-pascal.caffemodel'
    caffe.write_bytes(fcn_caffemodel(random_plain('8s-atonce', n_class=21), 'layers', 'unpacked'))
    for name, src, expected in (('torchfcn2mmseg', 'fcn.pth', 'FCN-16s: wrote 36 tensors to '),
                                ('vgg2mmseg', 'vgg.pth', 'wrote 30 tensors to '),
                                ('caffe2mmseg', caffe.name, 'FCN-8s-atonce: wrote 39 tensors to ')):
        dst = tmp_path / f'{name}.pth'
        assert tools[name].main([str(tmp_path / src), str(dst)]) == 0
        out = capsys.readouterr().out
        assert out.splitlines()[-1] == expected + str(dst), out
    assert "net 'voc-fcn8s-atonce' ('layers' encoding)" in out
    checkpoint = load(dst)
    assert checkpoint['meta']['dataset_meta']['classes'][0] == 'background'
    build('8s-atonce', width=WIDTH, fc=FC).load_state_dict(checkpoint['state_dict'], strict=True)


def test_tools_end_with_one_line(tmp_path, capsys, tools, random_plain):
    """A file a tool cannot convert: exit status 1 with one line (argparse's style), nothing
    written; the Caffe tool lists what it read first."""
    src, dst = tmp_path / 'fcn16s.caffemodel', tmp_path / 'out.pth'
    content = fcn_caffemodel(random_plain('16s'))
    src.write_bytes(content[:len(content) // 2])
    other = tmp_path / 'other.pth'
    torch.save({'features.0.weight': torch.zeros(1)}, other)
    for name, path, reason in (('caffe2mmseg', src, 'truncated'), ('torchfcn2mmseg', other,
                                                                   'not a pytorch-fcn'),
                               ('vgg2mmseg', other, 'not a torchvision-layout VGG')):
        with pytest.raises(SystemExit) as info:
            tools[name].main([str(path), str(dst)])
        message = info.value.code  # sys.exit(str): printed on stderr, exit status 1
        assert isinstance(message, str) and '\n' not in message
        assert message.startswith(f'{name}: error: {path}') and reason in message, message
        assert not dst.exists()
    capsys.readouterr()
    fc8 = [blob(np.zeros((5, 16, 1, 1), np.float32)), blob(np.zeros(5, np.float32))]
    content = fcn_caffemodel(random_plain('32s')) + layer('fc8', 'Convolution', fc8)
    src.write_bytes(content)
    with pytest.raises(SystemExit, match='neither an FCN nor the VGG16 classifier'):
        tools['caffe2mmseg'].main([str(src), str(dst), '--variant', '32s'])
    assert 'upscore        Deconvolution  5x5x64x64' in capsys.readouterr().out
