"""Weight converters: pytorch-fcn and VGG checkpoints give the original network's logits."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.runner import load_checkpoint
from mmseg.apis import init_model

from fcn_plugin.converters.plain_fcn import PlainFCN, plain_fcn_like

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools', 'model_converters')


def run_tool(name, *args):
    subprocess.run([sys.executable, osp.join(TOOLS, name), *map(str, args)],
                   check=True,
                   capture_output=True,
                   text=True)


def assert_rel_close(actual, expected, rtol=1e-4):
    err = (actual - expected).abs().max() / expected.abs().max()
    assert err <= rtol, f'max relative difference {err:.2e}'


@pytest.mark.parametrize('variant', ['32s', '16s', '8s', '8s-atonce'])
def test_torchfcn_checkpoint_gives_same_logits(tmp_path, variant, model_cfg, randomize):
    width, fc = 4, 16
    plain = randomize(PlainFCN(variant, n_class=21, width=width, fc=fc))
    src, dst = tmp_path / 'torchfcn.pth', tmp_path / 'mmseg.pth'
    torch.save(plain.state_dict(), src)
    run_tool('torchfcn2mmseg.py', src, dst)

    model = init_model(
        model_cfg_file(model_cfg, tmp_path, variant, width, fc), str(dst), device='cpu')
    x = torch.randn(1, 3, 37, 45)
    with torch.no_grad():
        expected = plain(x)
        result = model.predict(x)[0]
    assert result.seg_logits.data.shape == (21, 37, 45)
    assert_rel_close(result.seg_logits.data, expected[0])
    assert torch.equal(result.pred_sem_seg.data[0], expected[0].argmax(0))
    assert model.dataset_meta['classes'][0] == 'background'


def model_cfg_file(model_cfg, tmp_path, variant, width, fc):
    from mmengine.config import Config
    cfg = Config(
        dict(
            model=model_cfg(variant, width=width, fc=fc),
            custom_imports=dict(imports=['fcn_plugin'])))
    path = tmp_path / 'cfg.py'
    cfg.dump(str(path))
    return str(path)


def test_full_size_fcn8s_matches_reference(tmp_path, randomize):
    """The real widths (134M parameters) once, on a small image."""
    plain = randomize(PlainFCN('8s'), seed=1)
    src, dst = tmp_path / 'fcn8s.pth', tmp_path / 'fcn8s_mmseg.pth'
    torch.save({'model_state_dict': plain.state_dict(), 'arch': 'FCN8s'}, src)  # trainer format
    run_tool('torchfcn2mmseg.py', src, dst)
    model = init_model(osp.join(ROOT, 'configs/fcn8s_vgg16_voc.py'), str(dst), device='cpu')
    x = torch.randn(1, 3, 20, 27)
    with torch.no_grad():
        assert_rel_close(model.predict(x)[0].seg_logits.data, plain(x)[0])


def test_plain_fcn_like_copies_the_model(build, randomize):
    model = randomize(build('16s'))
    plain = plain_fcn_like(model)
    x = torch.randn(2, 3, 30, 22)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), model._forward(x), rtol=1e-5, atol=1e-5)


def test_torchfcn_converter_rejects_other_checkpoints(tmp_path):
    src = tmp_path / 'other.pth'
    torch.save({'features.0.weight': torch.zeros(1)}, src)
    with pytest.raises(subprocess.CalledProcessError) as info:
        run_tool('torchfcn2mmseg.py', src, tmp_path / 'out.pth')
    assert 'not a pytorch-fcn' in info.value.stderr
    assert not (tmp_path / 'out.pth').exists()


def torchvision_vgg16_state_dict(width=4, fc=16, classes=10):
    """A random VGG16 state dict in torchvision's layout (features.N, classifier.N)."""
    state, c_in, index = {}, 3, 0
    for stage, convs in enumerate((2, 2, 3, 3, 3)):
        c = width * min(2**stage, 8)
        for _ in range(convs):
            state[f'features.{index}.weight'] = torch.randn(c, c_in, 3, 3)
            state[f'features.{index}.bias'] = torch.randn(c)
            index += 2  # conv, relu
            c_in = c
        index += 1  # pool
    for i, (o, n) in zip((0, 3, 6), ((fc, c_in * 49), (fc, fc), (classes, fc))):
        state[f'classifier.{i}.weight'] = torch.randn(o, n)
        state[f'classifier.{i}.bias'] = torch.randn(o)
    return state


def test_vgg_converter_gives_backbone_of_classifier(tmp_path, build):
    state = torchvision_vgg16_state_dict()
    src, dst = tmp_path / 'vgg16.pth', tmp_path / 'vgg16_mmseg.pth'
    torch.save(state, src)
    run_tool('vgg2mmseg.py', src, dst)
    model = build('8s', width=4, fc=16)
    assert load_checkpoint(model.backbone, str(dst), strict=True) is not None
    assert torch.equal(model.backbone.conv5_3.weight, state['features.28.weight'])
    # fc6 as a 7x7 convolution on a 7x7 pool5 computes exactly the fully connected layer
    pool5 = torch.randn(1, 32, 7, 7)
    fc6 = torch.nn.functional.linear(
        pool5.flatten(1), state['classifier.0.weight'], state['classifier.0.bias'])
    torch.testing.assert_close(model.backbone.fc6(pool5).flatten(1), fc6, rtol=1e-4, atol=1e-4)


def test_vgg_checkpoint_through_init_cfg(tmp_path, model_cfg):
    src, dst = tmp_path / 'vgg16.pth', tmp_path / 'vgg16_mmseg.pth'
    state = torchvision_vgg16_state_dict()
    torch.save(state, src)
    run_tool('vgg2mmseg.py', src, dst)
    from mmseg.registry import MODELS
    cfg = model_cfg('8s', width=4, fc=16)
    cfg.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(dst))
    model = MODELS.build(cfg)
    model.init_weights()
    assert torch.equal(model.backbone.conv1_1.weight, state['features.0.weight'])
    assert model.decode_head.conv_seg.weight.abs().sum() == 0
