"""The reference configs say what the FCN recipe says (docs/fcn_reference.md section 3)."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CAFFE_MEAN = [104.00699, 116.66877, 122.67892]

# config -> (lr, iterations, load_from, backbone checkpoint)
STAGES = {
    'fcn32s_vgg16_voc.py': (1e-10, 100000, None, 'pretrain/vgg16_caffe.pth'),
    'fcn16s_vgg16_voc.py': (1e-12, 100000, 'work_dirs/fcn32s_vgg16_voc/iter_100000.pth', None),
    'fcn8s_vgg16_voc.py': (1e-14, 100000, 'work_dirs/fcn16s_vgg16_voc/iter_100000.pth', None),
    'fcn8s-atonce_vgg16_voc.py': (1e-10, 300000, None, 'pretrain/vgg16_caffe.pth'),
}
EXTRA = ['fcn8s-atonce_vgg16-tvweights_voc.py', 'fcn8s-atonce_vgg16_voc12aug.py']
PLAIN_PIPELINE = ['LoadImageFromFile', 'LoadAnnotations', 'PackSegInputs']
# checks that change nothing (fcn_plugin.datasets.transforms)
CHECKS = {'CheckSegFiles', 'CheckSegSample'}


def assert_plain(pipeline):
    """Load, (check,) pack: no resize, crop, flip, padding or photometric augmentation."""
    types = [t['type'] for t in pipeline]
    assert [t for t in types if t not in CHECKS] == PLAIN_PIPELINE, types


@pytest.fixture
def load(shipped_config):
    """``load(name)``: ``configs/<name>`` as a Config (read once per session)."""
    return lambda name: shipped_config(osp.join(ROOT, 'configs', name))


def datasets_of(cfg, which):
    dataset = cfg[f'{which}_dataloader']['dataset']
    return dataset['datasets'] if dataset['type'] == 'ConcatDataset' else [dataset]


@pytest.mark.parametrize('name', list(STAGES) + EXTRA)
def test_reference_solver_and_data(name, load):
    cfg = load(name)
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'SGD'
    assert opt.optimizer.momentum == 0.99 and opt.optimizer.weight_decay == 5e-4
    assert opt.paramwise_cfg.bias_lr_mult == 2.0 and opt.paramwise_cfg.bias_decay_mult == 0.0
    assert opt.get('clip_grad') is None
    assert not cfg.param_scheduler  # fixed learning rate: no warm-up, no decay
    # mmengine's IterBasedTrainLoop/InfiniteSampler, but --resume does not replay the data
    assert cfg.train_cfg.type == 'ResumableIterBasedTrainLoop'
    assert cfg.train_cfg.val_interval == 4000
    assert cfg.train_dataloader.sampler.type == 'ResumableInfiniteSampler'
    assert cfg.default_hooks.checkpoint.interval == 4000
    assert cfg.default_hooks.checkpoint.by_epoch is False
    assert cfg.model.decode_head.loss_decode.reduction == 'sum'  # summed loss
    assert cfg.model.decode_head.get('sampler') is None  # loss sampling off
    assert cfg.model.backbone.first_conv_padding == 100
    for which in ('train', 'val', 'test'):
        assert cfg[f'{which}_dataloader'].batch_size == 1
        for dataset in datasets_of(cfg, which):
            assert dataset.type == 'FCNVOCDataset'
            assert_plain(dataset.pipeline)  # full images, no augmentation
    assert cfg.val_evaluator.type == 'FCNMetric' and cfg.test_evaluator.type == 'FCNMetric'


@pytest.mark.parametrize('name', list(STAGES))
def test_stages(name, load):
    lr, iters, load_from, pretrained = STAGES[name]
    cfg = load(name)
    assert cfg.optim_wrapper.optimizer.lr == lr
    assert cfg.train_cfg.max_iters == iters
    assert cfg.get('load_from') == load_from
    init = cfg.model.backbone.init_cfg
    assert (init.checkpoint if init else None) == pretrained
    pre = cfg.model.data_preprocessor
    assert pre.mean == CAFFE_MEAN and pre.std == [1.0, 1.0, 1.0] and not pre.bgr_to_rgb
    train = cfg.train_dataloader.dataset
    val = cfg.val_dataloader.dataset
    assert train.ann_file.endswith('sbd_train.txt')
    assert train.data_prefix.seg_map_path == 'SegmentationClassSBD'
    assert val.ann_file.endswith('seg11valid.txt')
    assert val.data_prefix.seg_map_path == 'SegmentationClass'
    assert train.data_root == val.data_root == 'data/VOCdevkit/VOC2012'
    assert 'tools/dataset_converters/sbd.py' in ' '.join(train.prepare_cmd)


def test_variant_configs(load):
    tv = load('fcn8s-atonce_vgg16-tvweights_voc.py')
    pre = tv.model.data_preprocessor
    assert pre.bgr_to_rgb and pre.std == [58.395, 57.12, 57.375]
    assert tv.model.backbone.init_cfg.checkpoint == 'pretrain/vgg16_torchvision.pth'
    aug = load('fcn8s-atonce_vgg16_voc12aug.py')
    train = datasets_of(aug, 'train')
    assert [d.data_prefix.seg_map_path
            for d in train] == ['SegmentationClass', 'SegmentationClassAug']
    assert aug.val_dataloader.dataset.ann_file == 'ImageSets/Segmentation/val.txt'
    assert aug.model.decode_head.skip_scales == (0.0001, 0.01)
    assert aug.train_cfg.max_iters == 300000


def test_optimizer_groups_follow_the_recipe(load):
    """Built from the reference optim_wrapper: biases at 2x lr without decay, weights at lr
    with decay 5e-4, fixed upsampling absent (on the tiny model, to stay fast)."""
    from mmseg.registry import MODELS

    import fcn_plugin  # noqa: F401
    model_cfg = load('fcn8s_vgg16-tiny_toyvoc.py').model
    model = MODELS.build(model_cfg)
    wrapper = build_optim_wrapper(model, load('fcn8s_vgg16_voc.py').optim_wrapper)
    lr = 1e-14
    groups = wrapper.optimizer.param_groups
    by_param = {id(p): g for g in groups for p in g['params']}
    names = dict(model.named_parameters())
    assert len(by_param) == len(names)  # every learnable parameter, once
    for name, param in names.items():
        group = by_param[id(param)]
        if name.endswith('.bias'):
            assert group['lr'] == pytest.approx(2 * lr) and group['weight_decay'] == 0, name
        else:
            assert group['lr'] == pytest.approx(lr) and group['weight_decay'] == 5e-4, name
    assert not any('upsample' in n for n in names)  # fixed bilinear kernels are buffers
    # ... the head's three upsamplings (2x, 2x, 8x), class-diagonal bilinear, never trained
    from fcn_plugin.models.layers.bilinear_upsample import class_diagonal_bilinear_weight
    head = model.decode_head
    ups = {n: b for n, b in model.named_buffers() if 'upsample' in n}
    assert sorted(ups) == [
        'decode_head.fusions.0.upsample.weight', 'decode_head.fusions.1.upsample.weight',
        'decode_head.upsample.weight'
    ]
    c = model_cfg.decode_head.num_classes
    for name, module in (('decode_head.upsample.weight', head.upsample),
                         ('decode_head.fusions.0.upsample.weight', head.fusions[0].upsample),
                         ('decode_head.fusions.1.upsample.weight', head.fusions[1].upsample)):
        weight = ups[name]
        assert weight is module.weight and not weight.requires_grad, name
        assert torch.equal(weight, class_diagonal_bilinear_weight(c, module.kernel_size)), name
        assert id(weight) not in by_param, name


def test_toy_config(load):
    cfg = load('fcn8s_vgg16-tiny_toyvoc.py')
    assert cfg.model.decode_head.type == 'FCNSkipHead'
    assert cfg.model.backbone.type == 'VGG' and cfg.model.backbone.out_indices == (2, 3, 5)
    assert cfg.model.decode_head.loss_decode.reduction == 'mean'
    assert cfg.val_evaluator.type == 'FCNMetric'
    for which in ('train', 'val'):
        assert_plain(cfg[f'{which}_dataloader'].dataset.pipeline)


@pytest.mark.parametrize(
    'name', sorted(osp.basename(p) for p in glob.glob(osp.join(ROOT, 'configs', '*.py'))))
def test_every_config_uses_the_fcn_metric(name, load):
    cfg = load(name)
    assert cfg.val_evaluator.type == 'FCNMetric' and cfg.test_evaluator.type == 'FCNMetric'


@pytest.mark.parametrize(
    'name', sorted(osp.basename(p) for p in glob.glob(osp.join(ROOT, 'configs', '*.py'))))
def test_every_config_resumes_without_replaying_the_data(name, load):
    """The resumable loop with a sampler it can position (else it falls back to the replay)."""
    cfg = load(name)
    assert cfg.train_cfg.type == 'ResumableIterBasedTrainLoop'
    assert cfg.train_dataloader.sampler.type == 'ResumableInfiniteSampler'
    assert cfg.train_dataloader.get('batch_sampler') is None


RUNTIME = dict(
    load_policy='LoadPolicyHook',
    preflight='PreflightHook',
    divergence='DivergenceHook',
    preemption='PreemptionHook',
    confusion_matrix='ConfusionMatrixHook',
    work_dir_lock='WorkDirLockHook')
CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs', '*.py')) +
    glob.glob(osp.join(ROOT, 'tests', 'configs', '*.py')))


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_every_config_installs_the_runtime_as_named_default_hooks(path, shipped_config):
    """The runtime's hooks are named default hooks (merged by key: a child's custom_hooks cannot
    drop them); our fixes of mmengine's hooks are selected by name (mmengine's CheckpointHook
    and LoggerHook stay what every other config gets); a config inheriting mmseg's runtime
    keeps its checkpoint settings."""
    cfg = shipped_config(path)
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
    assert cfg.default_hooks.logger.type == 'RankZeroLoggerHook'
    assert {k: cfg.default_hooks[k].type for k in RUNTIME} == RUNTIME
    assert not cfg.get('custom_hooks') and cfg.randomness.seed is not None
    assert 'runner_type' not in cfg  # mmseg's tools/test.py would ignore it
    if osp.basename(path) == 'fcn8s_r50_voc12aug.py':
        import mmseg
        base = Config.fromfile(
            osp.join(
                osp.dirname(mmseg.__file__), '.mim', 'configs', 'fcn',
                'fcn_r50-d8_4xb4-20k_voc12aug-512x512.py')).default_hooks
        for key, mmengine_type in (('checkpoint', 'CheckpointHook'), ('logger', 'LoggerHook')):
            ours = {k: v for k, v in cfg.default_hooks[key].items() if k != '_scope_'}
            assert {**ours, 'type': mmengine_type} == base[key]
