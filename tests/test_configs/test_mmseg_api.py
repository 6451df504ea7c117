"""mmseg's high-level API on the plugin's configs, and the metafile that lists them."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import yaml
from mmengine.config import Config
from mmseg.apis import MMSegInferencer, inference_model, init_model, show_result_pyplot

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def narrow_voc(tmp_path_factory):
    """configs/fcn8s_vgg16_voc.py at 1/16 width (its own pipeline, checks included), a
    checkpoint with random score layers, and a 37x53 image on disk."""
    tmp = tmp_path_factory.mktemp('api')
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'fcn8s_vgg16_voc.py'))
    cfg.model.backbone.update(base_channels=4, fc_channels=16, init_cfg=None)
    cfg.model.decode_head.in_channels = (16, 32, 16)
    cfg.load_from = None
    cfg_path = str(tmp / 'cfg.py')
    cfg.dump(cfg_path)
    torch.manual_seed(0)
    model = init_model(cfg_path, None, device='cpu')
    for name, p in model.named_parameters():
        if 'score' in name or 'conv_seg' in name:
            torch.nn.init.normal_(p, std=0.05)
    meta = dict(classes=[f'c{i}' for i in range(21)], palette=[[i * 12] * 3 for i in range(21)])
    ckpt = str(tmp / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=meta)), ckpt)
    image = (np.random.default_rng(0).random((37, 53, 3)) * 255).astype(np.uint8)
    image_path = str(tmp / 'image.jpg')
    cv2.imwrite(image_path, image)
    return cfg_path, ckpt, image_path, tmp


def test_init_model_inference_model_and_show(narrow_voc):
    cfg_path, ckpt, image_path, tmp = narrow_voc
    model = init_model(cfg_path, ckpt, device='cpu')
    assert model.dataset_meta['classes'][3] == 'c3'
    from_path = inference_model(model, image_path)
    from_array = inference_model(model, cv2.imread(image_path))
    assert from_path.pred_sem_seg.shape == (37, 53)
    assert from_path.seg_logits.data.shape == (21, 37, 53)
    assert torch.equal(from_path.pred_sem_seg.data, from_array.pred_sem_seg.data)
    assert len(from_path.pred_sem_seg.data.unique()) > 1  # random score layers: not all one class
    out_file = str(tmp / 'vis.png')
    show_result_pyplot(model, image_path, from_path, show=False, out_file=out_file)
    assert cv2.imread(out_file).shape[:2] == (37, 53)


def test_mmseg_inferencer(narrow_voc):
    cfg_path, ckpt, image_path, _ = narrow_voc
    inferencer = MMSegInferencer(model=cfg_path, weights=ckpt, device='cpu')
    result = inferencer(image_path, return_datasamples=True)
    expected = inference_model(init_model(cfg_path, ckpt, device='cpu'), image_path)
    assert torch.equal(result.pred_sem_seg.data, expected.pred_sem_seg.data)


def test_metafile_lists_every_recipe_config():
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    models = []
    for path in index['Import']:
        with open(osp.join(ROOT, path)) as f:
            models += yaml.safe_load(f)['Models']
    names = {m['Name'] for m in models}
    assert names == {
        'fcn32s_vgg16_voc', 'fcn16s_vgg16_voc', 'fcn8s_vgg16_voc', 'fcn8s-atonce_vgg16_voc'
    }
    for model in models:
        assert osp.isfile(osp.join(ROOT, model['Config'])), model['Config']
        assert model['Name'] == osp.splitext(osp.basename(model['Config']))[0]
        assert set(model['Results']['Metrics']) == {'aAcc', 'mAcc', 'mIoU', 'fwIoU'}
