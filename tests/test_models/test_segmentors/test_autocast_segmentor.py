"""Reduced-precision and channels-last inference (AutocastEncoderDecoder), tested on the CPU."""
import argparse
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

from fcn_plugin.models import SkipFusion
from fcn_plugin.utils.config_vars import ConfigError
from fcn_plugin.utils.inference_options import add_inference_args, apply_inference_args

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIG = osp.join(ROOT, 'tests', 'configs', 'fcn8s_vgg16-narrow_tinyvoc.py')


def build(**options):
    cfg = Config.fromfile(CONFIG).model
    cfg.update(options)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    with torch.no_grad():  # non-zero score layers, so that predictions are not all class 0
        for name, p in model.named_parameters():
            if 'score' in name or 'conv_seg' in name:
                p.normal_(std=0.05)
    return model.eval()


def predict(model, x):
    with torch.no_grad():
        return torch.stack([s.seg_logits.data for s in model.predict(x)])


def test_bf16_and_channels_last_predict_close_to_fp32():
    x = torch.randn(2, 3, 45, 61) * 60
    ref = predict(build(), x)
    for options in (dict(inference_precision='bf16'), dict(channels_last=True),
                    dict(inference_precision='bf16', channels_last=True)):
        model = build(**options)
        out = predict(model, x)
        assert out.dtype == torch.float32 and out.shape == ref.shape
        if options.get('channels_last'):
            assert model.backbone.conv1_2.weight.is_contiguous(memory_format=torch.channels_last)
        tol = 0.05 if options.get('inference_precision') else 1e-4
        assert float((out - ref).abs().max() / ref.abs().max()) < tol, options
        assert float((out.argmax(1) == ref.argmax(1)).float().mean()) > 0.97, options


def test_unknown_precision_names_the_key():
    with pytest.raises(ValueError, match='model.inference_precision'):
        build(inference_precision='int8')


def test_fp16_keeps_the_atonce_pool3_scale():
    """1e-4 x small pool3 features is below fp16's normal range; the scale goes on the scores."""
    torch.manual_seed(0)
    fusion = SkipFusion(8, 3, skip_scale=1e-4)
    torch.nn.init.normal_(fusion.score.weight)
    fine = torch.rand(1, 8, 6, 6) * 1e-3
    exact = fusion.scored(fine)
    with torch.autocast('cpu', dtype=torch.float16):
        mixed = fusion.scored(fine)
        naive = fusion.score(fine * fusion.skip_scale)
    bias = fusion.score.bias.view(1, -1, 1, 1)
    err = float(((mixed - exact).abs().max()) / (exact - bias).abs().max())
    naive_err = float(((naive.float() - exact).abs().max()) / (exact - bias).abs().max())
    assert mixed.dtype == torch.float32 and err < 1e-2 < naive_err


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_inference_args(parser)
    return parser.parse_args(list(argv))


def test_tool_flags_set_the_model():
    cfg = Config.fromfile(CONFIG)
    apply_inference_args(cfg, parse('--precision', 'bf16', '--channels-last'), 'tool')
    assert (cfg.model.inference_precision, cfg.model.channels_last) == ('bf16', True)
    cfg = Config(dict(model=dict(type='EncoderDecoder')))
    apply_inference_args(cfg, parse('--precision', 'fp16'), 'tool')
    assert cfg.model.type == 'AutocastEncoderDecoder'
    cfg = Config(dict(model=dict(type='CascadeEncoderDecoder')))
    assert apply_inference_args(cfg, parse(), 'tool').model.type == 'CascadeEncoderDecoder'
    with pytest.raises(ConfigError, match="--precision.*'CascadeEncoderDecoder'"):
        apply_inference_args(cfg, parse('--precision', 'bf16'), 'tool')
