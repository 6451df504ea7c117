"""Your own data: the 0/255 binary-mask trap and its relatives caught by tools/check_dataset.py and
at training start (with the fix named), the custom-dataset configs, child configs that set
mmseg's nested keys (and a top-level variable that would reach nothing stopped, naming them),
and a binary toy dataset, converted from 0/255 masks, on which the binary config learns the
foreground."""
import os
import os.path as osp
import uuid

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import Runner
from mmseg.registry import DATASETS
from PIL import Image

import fcn_plugin  # noqa: F401
from fcn_plugin.datasets.label_checks import BadDatasetError, analyze_labels
from fcn_plugin.datasets.transforms import BadSampleError, CheckSegSample
from fcn_plugin.runtime import PreflightHook, preflight
from fcn_plugin.utils.config_vars import (ConfigError, check_config_vars, config_datasets,
                                          load_config)
from fcn_plugin.utils.label_png import save_label_png

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(ROOT, 'configs')
CONVERTER = 'tools/dataset_converters/masks2labels.py'


@pytest.fixture(scope='module')
def toy(load_tool):
    return load_tool('dataset_converters/make_toy_voc')


def config(name):
    return osp.join(CONFIGS, name)


def data_root_options(root):
    """``--cfg-options`` that point the three data loaders' datasets at ``root``."""
    return {
        f'{split}_dataloader.dataset.data_root': str(root)
        for split in ('train', 'val', 'test')
    }


def seg(root, name):
    """The label PNG of sample ``name`` in a ``make_voc`` folder."""
    return osp.join(str(root), 'SegmentationClass', name + '.png')


def write_01_255_masks(root, names):
    """Overwrite the labels of ``names`` with greyscale 0/255 masks (as most tools save them)."""
    for name in names:
        label = np.array(Image.open(seg(root, name)))
        Image.fromarray(np.where((label > 0) & (label < 255), 255,
                                 0).astype(np.uint8)).save(seg(root, name))


# ------------------------------------------------------------------------- the split analysis
def test_analyze_labels_finds_the_trap_and_its_relatives():

    def kinds(counts, num_classes=21, **kw):
        return {(f.level, f.kind) for f in analyze_labels(counts, num_classes, **kw)}

    masks = {f'd/m{i}.png': {0: 90, 255: 10} for i in range(3)}
    found = analyze_labels(masks, 2, classes=('bg', 'fg'))
    assert [(f.level, f.kind) for f in found] == [('error', 'binary_mask')]
    message = found[0].message
    assert message.startswith('train split (d, 3 label files checked): the labels hold only '
                              'the values 0 and 255 (0: 270 px, 255: 30 px)')
    assert f'{CONVERTER} d d_labels' in message and 'num_classes=2' in message
    assert kinds({'a.png': {255: 5}}) == {('error', 'all_void')}
    assert kinds({'a.png': {0: 5, 128: 5}}, 2) == {('error', 'grey_levels')}
    assert kinds({'a.png': {0: 5, 1: 5}}, 2) == set()  # already index labels
    assert kinds({'a.png': {0: 5, 1: 5, 255: 1}}, 3) == {('warning', 'no_pixels')}
    assert kinds({'a.png': {-1: 1}}) == {('error', 'colour')}
    assert kinds({'a.png': {0: 5, 1: 3, 40: 1}}, 2) == {('error', 'bad_values')}
    voc_like = {'a.png': {k: 10 for k in range(21)}, 'b.png': {0: 10, 255: 10}}
    assert kinds(voc_like) == {('warning', 'binary_files')}
    missing = analyze_labels({'a.png': {
        0: 5,
        2: 5
    }},
                             4,
                             classes=('bg', 'x', 'y', 'z'),
                             split='val',
                             total_files=10)
    assert missing[0].kind == 'no_pixels' and "1 'x', 3 'z'" in missing[0].message
    assert 'val split (., 1 label files checked of 10)' in missing[0].message


def test_check_dataset_catches_0_255_masks_and_all_void_splits(tmp_path, make_voc, check_dataset,
                                                               write_config):
    root = tmp_path / 'voc'
    ids = make_voc(root, n_train=4, n_val=2)
    write_01_255_masks(root, ids['train'])
    for name in ids['val']:
        Image.fromarray(np.full((20, 28), 255, np.uint8)).save(seg(root, name))
    result = check_dataset(write_config(tmp_path / 'cfg.py', root), '--workers', '1')
    assert result.returncode == 1
    out = result.stdout
    assert 'train: error: train split' in out and 'binary masks saved as 0/255' in out
    assert f'{CONVERTER} {root}/SegmentationClass {root}/SegmentationClass_labels' in out
    assert 'train: every sample loads, but the labels cannot be right' in out
    assert 'val: error: val split' in out and 'every pixel is void' in out
    assert 'all 4 samples OK' not in out


# ----------------------------------------------------------------- the check at training start
@pytest.fixture
def voc(tmp_path, make_voc):
    ids = make_voc(tmp_path / 'voc', n_train=4, n_val=2)
    return tmp_path / 'voc', ids


@pytest.mark.usefixtures('one_thread')
def test_training_stops_before_the_first_iteration_on_0_255_masks(voc, tmp_path, tiny_cfg,
                                                                  build_runner):
    root, ids = voc
    write_01_255_masks(root, ids['train'])
    runner = build_runner(tiny_cfg(root, tmp_path / 'work', max_iters=4))
    with pytest.raises(BadDatasetError) as info:
        runner.train()
    assert runner.iter == 0
    message = str(info.value)
    assert message.startswith(f'bad data: train split ({root}/SegmentationClass, 4 label files')
    assert 'binary masks saved as 0/255' in message and CONVERTER in message
    assert not [n for n in os.listdir(tmp_path / 'work') if n.endswith('.pth')]


@pytest.mark.usefixtures('one_thread')
def test_training_stops_on_an_all_void_val_split_and_warns_of_classes_without_pixels(
        voc, tmp_path, monkeypatch, tiny_cfg, build_runner):
    root, ids = voc
    logged = []
    monkeypatch.setattr(preflight, 'print_log', lambda msg, **kw: logged.append(msg))
    runner = build_runner(tiny_cfg(root, tmp_path / 'ok', max_iters=1, val_interval=100))
    runner.train()  # good data: trains, with a warning naming the classes without pixels
    warned = [m for m in logged if 'of 21 classes have no pixels' in m]
    assert warned and warned[0].startswith('PreflightHook: train split')
    for name in ids['val']:
        Image.fromarray(np.full((20, 28), 255, np.uint8)).save(seg(root, name))
    runner = build_runner(tiny_cfg(root, tmp_path / 'void', max_iters=4))
    with pytest.raises(BadDatasetError, match=r'val split .* every pixel is void'):
        runner.train()
    assert runner.iter == 0


def test_bad_values_stop_the_run_unless_bad_samples_are_skipped(voc, dataset_cfg):
    root, ids = voc
    label = np.array(Image.open(seg(root, ids['train'][1])))
    label[0, 0] = 77
    Image.fromarray(label).save(seg(root, ids['train'][1]))
    strict = DATASETS.build(dataset_cfg(root))
    found = PreflightHook().check_labels([('train_dataloader', strict)])
    assert [(f.level, f.kind) for f in found if f.kind != 'no_pixels'] == [('error', 'bad_values')]
    assert seg(root, ids['train'][1]) in found[0].message
    skipping = DATASETS.build(dataset_cfg(root, on_error='skip'))
    found = PreflightHook().check_labels([('train_dataloader', skipping)])
    assert {f.level for f in found} == {'warning'}


# ------------------------------------------------------------------ the shipped configs' checks
def _pipelines(cfg):
    return list(config_datasets(cfg))


@pytest.mark.parametrize('name', sorted(n for n in os.listdir(CONFIGS) if n.endswith('.py')))
def test_every_config_runs_the_per_sample_checks(name, shipped_config):
    cfg = shipped_config(config(name))
    check_config_vars(cfg)  # what load_config adds: no variable or key that reaches nothing
    heads = cfg.model.decode_head.num_classes
    for key, dataset in _pipelines(cfg):
        types = [t['type'] for t in dataset.pipeline]
        assert 'CheckSegFiles' in types and 'CheckSegSample' in types, (key, types)
        # the label is checked right after it is loaded (before any resize or crop)
        assert types.index('CheckSegSample') == types.index('LoadAnnotations') + 1, (key, types)
        for t in dataset.pipeline:
            if t['type'] == 'CheckSegSample':
                assert t.get('num_classes') in (None, heads), (key, t)  # None: from the dataset
    test_pipeline = [t['type'] for t in cfg.test_pipeline]
    assert test_pipeline[0] == 'LoadImageFromFile'  # mmseg's inference API replaces step one
    assert 'CheckSegSample' in test_pipeline


def test_tiny_config_rejects_a_bad_label_value_naming_the_file(tmp_path, toy):
    out = str(tmp_path / 'toy')
    toy.main(['--out-dir', out, '--num-train', '3', '--num-val', '2'])
    path = osp.join(out, 'SegmentationClass', 'toy_0001.png')
    label = np.array(Image.open(path))
    label[5, 5] = 9
    save_label_png(label, path)
    cfg = load_config(config('fcn8s_vgg16-tiny_toyvoc.py'), data_root_options(out))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    dataset[0]
    with pytest.raises(BadSampleError) as info:
        dataset[1]  # not "IndexError: Target 9 is out of bounds" in the middle of a run
    assert str(info.value).startswith(f'bad data: sample 1: {path}: label values 9 are outside '
                                      '0..5 and 255')


# -------------------------------------------------------- child configs change what they name
def write_child(path, base, body):
    path.write_text(f'_base_ = [{config(base)!r}]\n' + body)
    return str(path)


def test_child_config_sets_the_nested_keys(tmp_path):
    """The README's child config: mmseg's nested keys change what they name."""
    child = write_child(
        tmp_path / 'child.py', 'fcn8s_vgg16-tiny_toyvoc.py',
        "model = dict(decode_head=dict(num_classes=2))\n"
        "metainfo = dict(classes=('bg', 'fg'), palette=[[0, 0, 0], [9, 9, 9]])\n"
        f"data = dict(data_root={str(tmp_path / 'mine')!r}, metainfo=metainfo)\n"
        "train_dataloader = dict(dataset=data)\n"
        "val_dataloader = dict(dataset=data)\n"
        "test_dataloader = val_dataloader\n"
        "train_cfg = dict(max_iters=200)\n"
        "param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, "
        "begin=0, end=200, by_epoch=False)]\n")
    cfg = load_config(child)
    assert cfg.model.decode_head.num_classes == 2 and cfg.train_cfg.max_iters == 200
    assert cfg.param_scheduler[0].end == 200
    assert {d.data_root for _, d in _pipelines(cfg)} == {str(tmp_path / 'mine')}
    assert {d.metainfo.classes for _, d in _pipelines(cfg)} == {('bg', 'fg')}
    checks = [t for key, d in _pipelines(cfg) for t in d.pipeline if t.type == 'CheckSegSample']
    assert checks and all(t.get('num_classes') is None for t in checks)  # from the dataset


@pytest.mark.parametrize(
    'base,body,options,name,key', [
        ('fcn8s_vgg16-tiny_toyvoc.py', 'num_classes = 2\n', None, 'num_classes',
         r'model\.decode_head\.num_classes=2'),
        ('fcn8s_vgg16-tiny_toyvoc.py', "data_root = 'data/mine'\n", None, 'data_root',
         r"train_dataloader\.dataset\.data_root='data/mine'"),
        ('fcn8s_vgg16-tiny_toyvoc.py', 'max_iters = 50\n', None, 'max_iters',
         r'train_cfg\.max_iters=50'),
        ('fcn8s_vgg16-tiny_toyvoc.py', '', dict(max_iters=50), 'max_iters',
         r'train_cfg\.max_iters=50'),
        ('fcn8s_vgg16_custom.py', "img_suffix = '.png'\n", None, 'img_suffix',
         r"train_dataloader\.dataset\.img_suffix='\.png'"),
    ],
    ids=['num_classes', 'data_root', 'max_iters', 'cfg-options', 'img_suffix'])
def test_a_top_level_variable_that_reaches_nothing_names_the_nested_keys(
        tmp_path, base, body, options, name, key):
    """mmengine evaluates a base's variables when it reads the base, so a child's top-level
    ``num_classes = 2`` (what earlier versions of this README suggested) would silently train
    the base's 6 classes: it is an error naming the keys to set."""
    child = write_child(tmp_path / 'child.py', base, body)
    with pytest.raises(ConfigError, match=f'{name} = .* does not reach .* {key}'):
        load_config(child, options)


@pytest.mark.usefixtures('one_thread')
def test_mmseg_runner_stops_a_child_whose_variable_reaches_nothing(tmp_path, toy):
    """mmseg's tools build Runner.from_cfg(Config.fromfile(child)): the preflight hook (a named
    default hook, kept although the child sets its own custom_hooks) stops the run before its
    first iteration."""
    out = str(tmp_path / 'toy')
    toy.main(['--out-dir', out, '--num-train', '2', '--num-val', '1'])
    loaders = ''.join(f'{k}_dataloader = dict(dataset=dict(data_root={out!r}))\n'
                      for k in ('train', 'val', 'test'))
    child = write_child(
        tmp_path / 'child.py', 'fcn8s_vgg16-tiny_toyvoc.py', f'num_classes = 2\n{loaders}'
        "custom_hooks = [dict(type='EmptyCacheHook')]\n"
        f'work_dir = {str(tmp_path / "work")!r}\n')
    cfg = Config.fromfile(child)
    cfg.experiment_name = f'unresolved_child_{uuid.uuid4().hex[:8]}'
    runner = Runner.from_cfg(cfg)
    with pytest.raises(
            ConfigError,
            match=r'num_classes = 2 does not reach .* '
            r'model\.decode_head\.num_classes = 6'):
        runner.train()
    assert runner.iter == 0


# --------------------------------------------------------------------- the custom-data configs
def test_custom_config_is_one_place_to_edit():
    cfg = load_config(config('fcn8s_vgg16_custom.py'))
    assert cfg.model.decode_head.type == 'FCNSkipHead' and cfg.model.backbone.depth == 16
    assert cfg.model.decode_head.num_classes == len(cfg.classes) == 2  # binary by default
    assert cfg.model.backbone.init_cfg.checkpoint == 'pretrain/vgg16_caffe.pth'
    for which, prefix in (('train', cfg.train_prefix), ('val', cfg.val_prefix)):
        dataset = cfg[f'{which}_dataloader'].dataset
        assert dataset.type == 'CustomSegDataset' and dataset.data_root == cfg.data_root
        assert dataset.data_prefix == prefix
        assert (dataset.img_suffix, dataset.seg_map_suffix) == ('.jpg', '.png')
        assert dataset.metainfo.classes == cfg.classes
    assert cfg.train_cfg.max_iters == cfg.max_iters
    assert 'CustomSegDataset' in DATASETS.module_dict


def test_custom_dataset_names_folders_and_suffixes(tmp_path):
    root = tmp_path / 'data'
    for sub in ('images/train', 'labels/train'):
        (root / sub).mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / 'images/train/a.jpg')
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / 'labels/train/a_mask.png')
    cfg = dict(
        type='CustomSegDataset',
        data_root=str(root),
        data_prefix=dict(img_path='images/train', seg_map_path='labels/train'),
        img_suffix='.jpg',
        seg_map_suffix='.png',
        metainfo=dict(classes=('bg', 'fg'), palette=[[0, 0, 0], [255, 255, 255]]),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='CheckSegSample')
        ])
    with pytest.raises(
            FileNotFoundError,
            match=r"1 of 1 images have no label ending with "
            r"seg_map_suffix='\.png'"):
        DATASETS.build(cfg)
    with pytest.raises(FileNotFoundError, match=r"no image ending with img_suffix='\.png'"):
        DATASETS.build(dict(cfg, img_suffix='.png'))
    with pytest.raises(FileNotFoundError, match='label folder not found'):
        DATASETS.build(
            dict(cfg, data_prefix=dict(img_path='images/train', seg_map_path='labels/val')))
    dataset = DATASETS.build(dict(cfg, seg_map_suffix='_mask.png'))  # any suffixes
    assert len(dataset) == 1 and dataset[0]['gt_seg_map'].shape == (8, 8)
    check = [t for t in dataset.pipeline.transforms if isinstance(t, CheckSegSample)][0]
    assert check.num_classes == 2  # filled in from the dataset's classes


# ------------------------------------------------------------ binary: 0/255 masks to a model
@pytest.mark.usefixtures('one_thread')
def test_binary_toy_from_0_255_masks_learns_the_foreground(tmp_path, capsys, toy, load_tool):
    data = str(tmp_path / 'toy_binary')
    toy.main(['--binary', '--out-dir', data, '--num-train', '48', '--num-val', '12'])
    mask = np.array(Image.open(osp.join(data, 'masks', 'val', 'toy_0048.png')))
    assert set(np.unique(mask)) == {0, 255}
    m2l = load_tool('dataset_converters/masks2labels')
    assert m2l.main([osp.join(data, 'masks'), osp.join(data, 'labels'), '--quiet']) == 0
    assert 'num_classes = 2' in capsys.readouterr().out
    cfg = load_config(
        config('fcn8s_vgg16-tiny_toybinary.py'),
        dict(
            data_root_options(data),
            work_dir=str(tmp_path / 'work'),
            log_level='WARNING',
            optim_wrapper=dict(optimizer=dict(lr=2e-3)),
            train_cfg=dict(max_iters=80, val_interval=1000),
            default_hooks=dict(checkpoint=dict(interval=1000))))
    assert cfg.model.decode_head.num_classes == 2  # softmax over two classes, as in the paper
    # a few dozen iterations at a constant lr (a poly decay over 80 iterations would lower it
    # before the narrow model, trained from scratch, has found the shapes): ~15 s on one core
    cfg.param_scheduler = []
    cfg.experiment_name = f'binary_{uuid.uuid4().hex[:8]}'
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    labels = [
        np.array(Image.open(osp.join(data, 'labels', 'val', f)))
        for f in os.listdir(osp.join(data, 'labels', 'val'))
    ]
    chance = 100 * np.mean(np.concatenate([lab.ravel() for lab in labels]) == 1)  # all "shape"
    assert metrics['IoU.shape'] > max(40, chance + 15), (metrics, chance)
    assert metrics['IoU.background'] > 70
