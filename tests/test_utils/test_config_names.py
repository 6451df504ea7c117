"""Top-level names that reach nothing: typos of known names (in a child config or
--cfg-options) and base variables a child sets, stopped with the key to set instead."""
import os.path as osp

import pytest
from mmengine.config import Config

from fcn_plugin.utils.config_vars import ConfigError, check_config_vars, load_config

CONFIGS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs')


def child(tmp_path, base, body):
    path = tmp_path / 'child.py'
    path.write_text(f'_base_ = [{osp.join(CONFIGS, base)!r}]\n' + body)
    return str(path)


def test_typos_of_known_names_are_named_together(tmp_path):
    path = child(tmp_path, 'fcn8s_vgg16-tiny_toyvoc.py', "max_iter = 10\ndata_rot = 'x'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "data_rot = 'x' is not a key" in message and "did you mean 'data_root'?" in message
    # max_iters is no variable of this chain: the key that sets it is named
    assert "did you mean 'max_iters' (here set as train_cfg.max_iters)?" in message


def test_a_typo_in_cfg_options():
    with pytest.raises(ConfigError, match="max_iter = 10 .* did you mean 'max_iters'"):
        load_config(osp.join(CONFIGS, 'fcn8s_vgg16-tiny_toyvoc.py'), {'max_iter': 10})


@pytest.mark.parametrize(
    'body,base,keys',
    [
        ("train_prefix = dict(img_path='imgs', seg_map_path='labs')\n", 'fcn8s_vgg16_custom.py',
         'train_dataloader.dataset.data_prefix'),
        ("val_split = 'val.txt'\n", 'fcn8s_vgg16_custom.py', 'val_dataloader.dataset.ann_file'),
        # the nearest base that reads it: the custom config does not, its data base does
        ("train_pipeline = [dict(type='LoadImageFromFile')]\n", '_base_/datasets/custom_seg.py',
         'train_dataloader.dataset.pipeline'),
    ])
def test_a_base_variable_set_by_a_child_names_the_keys_built_from_it(tmp_path, body, base, keys):
    path = child(tmp_path, 'fcn8s_vgg16_custom.py', body)
    name = body.split(' = ')[0]
    with pytest.raises(
            ConfigError,
            match=f'{name} = .* reaches nothing: .*{base} set {keys} from its own {name} = '):
        load_config(path)


def test_names_that_are_no_typo_pass(tmp_path):
    body = (
        "my_note = 'trained on the March images'\n"  # like no known name
        "train_prefix = dict(img_path='images/train', seg_map_path='labels/train')\n"  # same
        "work_dir = 'work_dirs/mine'\n"  # a runner key, read by the runner
        "val_dataloader = dict(batch_size=1)\n"
        "test_pipeline = [dict(type='LoadImageFromFile')]\n"  # mmseg's inferencer reads it
        "img_path = 'x'\n")  # a user's own value, used below
    body += "test_dataloader = dict(dataset=dict(data_prefix=dict(img_path=img_path)))\n"
    cfg = load_config(child(tmp_path, 'fcn8s_vgg16_custom.py', body))
    assert cfg.test_dataloader.dataset.data_prefix.img_path == 'x'


def test_a_typo_in_one_of_mmsegs_own_configs_is_found():
    """mmseg 1.2.2's bisenetv2 OHEM config sets ``models = dict(...)``: its OHEM sampler and
    its 1024 px size never reach the model."""
    import mmseg
    cfg = Config.fromfile(
        osp.join(
            osp.dirname(mmseg.__file__), '.mim', 'configs', 'bisenetv2',
            'bisenetv2_fcn_4xb4-ohem-160k_cityscapes-1024x1024.py'))
    with pytest.raises(ConfigError, match="models = .* did you mean 'model'"):
        check_config_vars(cfg)
