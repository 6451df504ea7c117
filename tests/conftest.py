"""Shared test set-up and builders, as fixtures (no test module imports another one).

Sections: the repository and its tools; FCN models; a tiny VOC dataset and its configs;
runners that train in about a second; ``tools/check_dataset.py``; checks.

Builders that take arguments are "factory" fixtures: the fixture returns the function, e.g.
``def test_x(tmp_path, make_voc, tiny_cfg, build_runner): runner = build_runner(tiny_cfg(...))``.
"""
import contextlib
import copy
import importlib.util
import io
import os
import os.path as osp
import subprocess
import sys
import uuid

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

import fcn_plugin  # noqa: F401  (registers the plugin's components)
from fcn_plugin.utils.label_png import save_label_png

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
VOC_NUM_CLASSES = 21  # PascalVOCDataset


@pytest.fixture(autouse=True, scope='session')
def mmseg_default_scope():
    init_default_scope('mmseg')


@pytest.fixture(autouse=True, scope='session')
def quick_runners():
    """Runner builds and checkpoint saves without two costs no test looks at: mmengine formats
    a config's text with yapf (0.1-1 s a call; a runner calls it 3 times, and once per saved
    checkpoint), and each dataset it builds calls ``gc.collect()`` (to free memory before
    serialising its list) on a heap that the session makes large: up to seconds a dataset.
    Here the config text stays unformatted (still valid Python), datasets skip the collection,
    and the objects the imports made are frozen out of the collector's reach."""
    import gc
    from types import SimpleNamespace

    from mmengine.config import config
    from mmengine.dataset import base_dataset
    saved = config.FormatCode, base_dataset.gc
    config.FormatCode = lambda text, **kwargs: (text, False)
    base_dataset.gc = SimpleNamespace(collect=lambda *args: 0)
    gc.freeze()  # what the imports made: Python's own full collections skip it
    yield
    config.FormatCode, base_dataset.gc = saved


# ------------------------------------------------------------------ the repository, its tools
@pytest.fixture(scope='session')
def repo_root():
    """The repository's root folder (configs/, tools/, tests/)."""
    return REPO_ROOT


def _exec_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # importable by name: worker processes can pickle its functions
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


@pytest.fixture(scope='session')
def load_tool():
    """``load_tool('dataset_converters/sbd')``: ``tools/dataset_converters/sbd.py`` as a module
    (once per session; its ``main(argv)`` runs the tool in this process), registered in
    ``sys.modules`` as ``_tool_dataset_converters_sbd``."""

    def load(name):
        module_name = '_tool_' + name.replace('/', '_')
        if module_name not in sys.modules:
            _exec_module(module_name, osp.join(REPO_ROOT, 'tools', f'{name}.py'))
        return sys.modules[module_name]

    return load


@pytest.fixture(scope='session')
def shipped_config():
    """``read(path)``: ``Config.fromfile(path)``, read once per session and deep-copied on
    every call (a config inheriting mmseg's bases takes ~0.3 s to read; several tests check
    every shipped config)."""
    read = {}

    def load(path):
        if path not in read:
            read[path] = Config.fromfile(path)
        return copy.deepcopy(read[path])

    return load


@pytest.fixture(scope='session')
def narrow_fcn8s_export(tmp_path_factory):
    """``configs/fcn8s_vgg16_voc.py`` at 1/16 width, saved as a checkpoint and exported to
    ONNX at 64x80 once per session (an export takes seconds; the export tests and the
    benchmark's runtime comparison share it): a namespace with ``config``, ``argv`` (the
    ``--cfg-options`` that narrow it), ``options`` (the same as a dict), ``checks`` (the sizes
    the export checked), ``result`` (the ExportResult), ``model`` (eval mode), ``onnx`` and
    ``checkpoint``."""
    import ast
    from types import SimpleNamespace
    pytest.importorskip('onnxruntime', reason='pip install -e .[onnx]')
    pytest.importorskip('onnxscript', reason='pip install -e .[onnx]')
    from fcn_plugin.apis.export import build_model, export_onnx, load_config
    config = osp.join(REPO_ROOT, 'configs', 'fcn8s_vgg16_voc.py')
    argv = [
        'model.backbone.base_channels=4', 'model.backbone.fc_channels=16',
        'model.decode_head.in_channels=[16,32,16]'
    ]
    options = {k: ast.literal_eval(v) for k, v in (a.split('=', 1) for a in argv)}
    checks = ['64x80', '97x131', '1x1', '2x31x17']
    tmp = tmp_path_factory.mktemp('onnx')
    model = build_model(load_config(config, options), None)
    ckpt, out = str(tmp / 'fcn8s.pth'), str(tmp / 'fcn8s.onnx')
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    result = export_onnx(
        config, ckpt, out, shape=(64, 80), check_shapes=checks, cfg_options=options)
    return SimpleNamespace(
        config=config,
        argv=argv,
        options=options,
        checks=checks,
        result=result,
        model=model.eval(),
        onnx=out,
        checkpoint=ckpt)


@pytest.fixture(scope='session')
def toy_and_checkpoint(tmp_path_factory):
    """Two toy val images (``<tmp>/toy``, VOC layout) and a checkpoint of the tiny demo model
    with random score layers (``<tmp>/model.pth``, with the toy classes): ``(tmp, checkpoint)``,
    once per session; tests write their outputs to folders of their own below ``tmp``."""
    from mmengine.logging import MMLogger
    from mmseg.registry import MODELS

    from fcn_plugin.datasets.toy_data import make_toy_voc
    from fcn_plugin.datasets.toy_voc import TOY_CLASSES
    from fcn_plugin.utils.label_png import voc_palette
    MMLogger.get_current_instance()  # made outside the tests' captured streams
    tmp = tmp_path_factory.mktemp('toy_model')
    make_toy_voc(str(tmp / 'toy'), num_train=1, num_val=2)
    model = MODELS.build(
        Config.fromfile(osp.join(REPO_ROOT, 'configs', 'fcn8s_vgg16-tiny_toyvoc.py')).model)
    model.init_weights()
    torch.nn.init.normal_(model.decode_head.conv_seg.weight)  # non-trivial predictions
    meta = dict(classes=list(TOY_CLASSES), palette=voc_palette()[:6].tolist())
    ckpt = str(tmp / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=meta)), ckpt)
    return tmp, ckpt


# ------------------------------------------------------------------------- hostile checkpoints
class _CodeOnUnpickling:
    """Unpickling this runs ``exec``, which creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").close()', )


@pytest.fixture
def hostile(tmp_path):
    """A checkpoint that looks like mmengine's, with code in its meta data: ``(path, marker)``;
    loading it without ``weights_only`` creates the marker file."""
    marker = tmp_path / 'CODE_RAN'
    path = tmp_path / 'hostile.pth'
    torch.save(
        {
            'meta': {
                'epoch': 0,
                'iter': 1,
                'note': _CodeOnUnpickling(marker)
            },
            'state_dict': {
                'backbone.conv1_1.weight': torch.zeros(4, 3, 3, 3)
            }
        }, path)
    assert not marker.exists()
    return str(path), marker


@pytest.fixture
def unguarded_loaders(monkeypatch):
    """mmengine's own checkpoint loaders (not the tools' weights-only ones) and torch's
    weights-only load turned off, for this test: an API function must install its own guard."""
    from mmengine.runner import checkpoint as mmengine_checkpoint
    monkeypatch.setattr(mmengine_checkpoint.CheckpointLoader, '_schemes',
                        {'': mmengine_checkpoint.load_from_local})  # as mmengine has them
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')


# ------------------------------------------------------------------------------- FCN models
@pytest.fixture(scope='session')
def model_cfg():
    """``model_cfg(variant='8s', width=2, fc=8, **head)``: configs/_base_/models/fcn{variant}_vgg16
    at ``width`` base channels and ``fc`` fc6/fc7 channels, ``head`` merged into the decode head."""

    def make(variant='8s', width=2, fc=8, **head):
        cfg = Config.fromfile(osp.join(REPO_ROOT,
                                       f'configs/_base_/models/fcn{variant}_vgg16.py')).model
        cfg = copy.deepcopy(cfg)
        cfg.backbone.update(base_channels=width, fc_channels=fc)
        chans = {2: 4 * width, 3: 8 * width, 5: fc}
        cfg.decode_head.in_channels = tuple(chans[i] for i in cfg.backbone.out_indices)
        cfg.decode_head.update(head)
        return cfg

    return make


@pytest.fixture(scope='session')
def build(model_cfg):
    """``build(variant='8s', **model_cfg_kwargs)``: the narrow model, initialised, in eval mode."""
    from mmseg.registry import MODELS

    def make(variant='8s', **kwargs):
        model = MODELS.build(model_cfg(variant, **kwargs))
        model.init_weights()
        return model.eval()

    return make


@pytest.fixture(scope='session')
def samples():
    """``samples(shapes, num_classes=21)``: SegDataSamples with random labels (10% void)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    def make(shapes, num_classes=21):
        out = []
        for h, w in shapes:
            sample = SegDataSample()
            sample.gt_sem_seg = PixelData(
                data=torch.randint(0, num_classes, (
                    1, h, w)).masked_fill_(torch.rand(1, h, w) < 0.1, 255))
            sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
            out.append(sample)
        return out

    return make


@pytest.fixture(scope='session')
def preprocess(samples):
    """``preprocess(model, shapes, training=False, num_classes=21)``: random uint8 images of
    ``shapes`` with :func:`samples`, through the model's data preprocessor."""

    def run(model, shapes, training=False, num_classes=21):
        data = dict(
            inputs=[torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in shapes],
            data_samples=samples(shapes, num_classes))
        return model.data_preprocessor(data, training)

    return run


@pytest.fixture(scope='session')
def randomize():
    """``randomize(module, seed=0)``: random weights everywhere, score layers included (they
    start at zero), but not pytorch-fcn's ``upscore`` layers; returns the module in eval mode."""

    def run(module, seed=0):
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in module.named_parameters():
                if 'upscore' not in name:
                    p.copy_(torch.randn(p.shape, generator=gen) * (0.2 if p.dim() > 1 else 0.05))
        return module.eval()

    return run


# ------------------------------------------------------------- a tiny VOC dataset, its configs
@pytest.fixture(scope='session')
def make_voc():
    """``make_voc(root, n_train=6, n_val=2, size=(20, 28), seed=0)``: the VOC2012 layout under
    ``root``: JPEGImages/*.jpg, SegmentationClass/*.png (palette, one class 1-20 in a block, a
    255 border line), ImageSets/Segmentation/{train,val}.txt. Returns ``{split: ids}``."""

    def make(root, n_train=6, n_val=2, size=(20, 28), seed=0):
        rng = np.random.default_rng(seed)
        root = str(root)
        for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
            os.makedirs(osp.join(root, sub), exist_ok=True)
        ids = {
            'train': [f'2007_{i:06d}' for i in range(n_train)],
            'val': [f'2008_{i:06d}' for i in range(n_val)]
        }
        h, w = size
        for split, names in ids.items():
            for name in names:
                label = np.zeros((h, w), np.uint8)
                cls = int(rng.integers(1, VOC_NUM_CLASSES))
                y, x = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
                label[y:y + h // 2, x:x + w // 2] = cls
                label[y, x:x + w // 2] = 255  # a void border, as in VOC
                image = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
                image[label == cls] += np.uint8(40 + 8 * cls)
                Image.fromarray(image).save(osp.join(root, 'JPEGImages', name + '.jpg'), quality=90)
                save_label_png(label, osp.join(root, 'SegmentationClass', name + '.png'))
            with open(osp.join(root, 'ImageSets/Segmentation', split + '.txt'), 'w') as f:
                f.write('\n'.join(names) + '\n')
        return ids

    return make


def _dataset_cfg(root, split='train', wrap=True, on_error='raise', **wrapper_args):
    inner = dict(
        type='PascalVOCDataset',
        data_root=str(root),
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file=f'ImageSets/Segmentation/{split}.txt',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs'),
        ])
    if not wrap:
        return inner
    return dict(type='ValidatedDataset', dataset=inner, on_error=on_error, **wrapper_args)


@pytest.fixture(scope='session')
def dataset_cfg():
    """``dataset_cfg(root, split='train', wrap=True, on_error='raise', **wrapper_args)``: a
    PascalVOCDataset on a :func:`make_voc` folder, inside ValidatedDataset unless ``wrap=False``."""
    return _dataset_cfg


# ------------------------------------------------------------ runners that train in a second
@pytest.fixture(scope='session')
def tiny_cfg():
    """``tiny_cfg(root, work_dir, max_iters=6, lr=1e-3, val_interval=2, ckpt_interval=3,
    custom_hooks=None, **overrides)``: FCN-8s (VGG11 at 1/16 width, pad 100, dropout 0.5,
    summed loss as the reference) with the runtime of configs/_base_/fcn_runtime.py (its hooks
    and seed) on a :func:`make_voc` folder; the recipes' train loop and sampler
    (ResumableIterBasedTrainLoop, ResumableInfiniteSampler). ``custom_hooks`` are appended."""

    def make(root,
             work_dir,
             max_iters=6,
             lr=1e-3,
             val_interval=2,
             ckpt_interval=3,
             custom_hooks=None,
             **overrides):
        cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs/_base_/fcn_runtime.py'))
        loader = dict(
            batch_size=1,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=_dataset_cfg(root, 'val'))
        cfg.merge_from_dict(
            dict(
                work_dir=str(work_dir),
                log_level='WARNING',
                env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo')),
                model=dict(
                    type='EncoderDecoder',
                    data_preprocessor=dict(
                        type='PadSegDataPreProcessor',
                        mean=[104.00699, 116.66877, 122.67892],
                        std=[1.0, 1.0, 1.0],
                        bgr_to_rgb=False,
                        pad_val=0,
                        seg_pad_val=255),
                    backbone=dict(
                        type='VGG',
                        depth=11,
                        base_channels=4,
                        fc_channels=16,
                        first_conv_padding=100,
                        dropout_ratio=0.5,
                        out_indices=(2, 3, 5)),
                    decode_head=dict(
                        type='FCNSkipHead',
                        in_channels=(16, 32, 16),
                        in_index=(0, 1, 2),
                        num_classes=VOC_NUM_CLASSES,
                        loss_decode=dict(
                            type='CrossEntropyLoss',
                            use_sigmoid=False,
                            loss_weight=1.0,
                            reduction='sum')),
                    train_cfg=dict(),
                    test_cfg=dict(mode='whole')),
                train_dataloader=dict(
                    batch_size=1,
                    num_workers=0,
                    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
                    dataset=_dataset_cfg(root, 'train')),
                val_dataloader=loader,
                test_dataloader=copy.deepcopy(loader),
                val_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
                test_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
                optim_wrapper=dict(
                    type='OptimWrapper',
                    optimizer=dict(type='SGD', lr=lr, momentum=0.99, weight_decay=5e-4),
                    paramwise_cfg=dict(bias_lr_mult=2.0, bias_decay_mult=0.0)),
                param_scheduler=[],
                train_cfg=dict(
                    type='ResumableIterBasedTrainLoop',
                    max_iters=max_iters,
                    val_interval=val_interval),
                val_cfg=dict(type='ValLoop'),
                test_cfg=dict(type='TestLoop'),
                default_hooks=dict(
                    timer=dict(type='IterTimerHook'),
                    logger=dict(type='RankZeroLoggerHook', interval=1, log_metric_by_epoch=False),
                    param_scheduler=dict(type='ParamSchedulerHook'),
                    checkpoint=dict(
                        type='AtomicCheckpointHook', by_epoch=False, interval=ckpt_interval),
                    sampler_seed=dict(type='DistSamplerSeedHook')),
                visualizer=dict(type='SegLocalVisualizer', vis_backends=[], name='visualizer'),
            ))
        if custom_hooks is not None:
            cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + list(custom_hooks)
        cfg.merge_from_dict(overrides)
        return cfg

    return make


@pytest.fixture(scope='session')
def build_runner():
    """``build_runner(cfg)``: a Runner with its own experiment name (mmengine shares the message
    hub and logger of runners with the same name, which two runners built within one second
    would get)."""
    from mmengine.runner import Runner

    def build(cfg):
        cfg = cfg.copy()
        cfg.experiment_name = f'test_{uuid.uuid4().hex[:12]}'
        return Runner.from_cfg(cfg)

    return build


@pytest.fixture(scope='session')
def state_dict_of():
    """``state_dict_of(path)``: a checkpoint file, loaded on the CPU with ``weights_only``."""
    return lambda path: torch.load(path, map_location='cpu', weights_only=True)


@pytest.fixture
def one_thread():
    """Tiny convolutions run faster on one thread, and the test machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def toy_binary(tmp_path_factory, load_tool):
    """A small binary toy dataset in the own-data layout (``images/{train,val}``, 0/255
    ``masks/...`` and the ``labels/...`` masks2labels converted them to), made once: its root,
    for ``configs/fcn8s_vgg16-tiny_toybinary.py`` and children of it."""
    root = str(tmp_path_factory.mktemp('toy_binary') / 'data')
    load_tool('dataset_converters/make_toy_voc').main(
        ['--binary', '--out-dir', root, '--num-train', '4', '--num-val', '2'])
    assert load_tool('dataset_converters/masks2labels').main(
        [osp.join(root, 'masks'), osp.join(root, 'labels'), '--quiet']) == 0
    return root


@pytest.fixture(scope='session')
def toy_binary_child(toy_binary, repo_root):
    """``toy_binary_child(path, body='')``: a child config of the binary toy config written to
    ``path``, set with mmseg's nested keys: the :func:`toy_binary` data, classes renamed
    ('bg', 'fg'), 2 iterations with a checkpoint at each, quiet logs; ``body`` appended."""

    def write(path, body=''):
        base = osp.join(repo_root, 'configs', 'fcn8s_vgg16-tiny_toybinary.py')
        path.write_text(
            f'_base_ = [{base!r}]\n'
            "metainfo = dict(classes=('bg', 'fg'), palette=[[0, 0, 0], [0, 0, 255]])\n"
            f'data = dict(data_root={toy_binary!r}, metainfo=metainfo)\n'
            'train_dataloader = dict(dataset=data)\n'
            'val_dataloader = dict(dataset=data)\n'
            'test_dataloader = val_dataloader\n'
            'model = dict(decode_head=dict(num_classes=2))\n'
            'train_cfg = dict(max_iters=2, val_interval=100)\n'
            'default_hooks = dict(checkpoint=dict(interval=1), logger=dict(interval=1))\n'
            "log_level = 'WARNING'\n" + body)
        return str(path)

    return write


# ---------------------------------------------------------------- tools/check_dataset.py
@pytest.fixture(scope='session')
def check_dataset(load_tool):
    """``check_dataset(config, *args)``: ``tools/check_dataset.py``'s ``main`` in this process,
    as its command line runs it (user errors end it with one line on stderr); a
    CompletedProcess with its exit status and output."""
    from fcn_plugin.utils.tool_errors import run_tool
    tool = load_tool('check_dataset')

    def run(config, *args):
        argv = [str(config), *map(str, args)]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = run_tool(tool.main, 'tools/check_dataset.py', argv)
            except SystemExit as stop:
                code = stop.code
        return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture(scope='session')
def write_config():
    """``write_config(path, root, val_type='PascalVOCDataset')``: a config file with the train
    (ValidatedDataset), val and test datasets of a :func:`make_voc` folder; returns ``path``."""

    def write(path, root, val_type='PascalVOCDataset'):
        val = _dataset_cfg(root, 'val', wrap=False)
        val['type'] = val_type
        path.write_text(
            "custom_imports = dict(imports=['fcn_plugin'], allow_failed_imports=False)\n"
            "default_scope = 'mmseg'\n"
            f'train_dataloader = dict(dataset={_dataset_cfg(root, "train")!r})\n'
            f'val_dataloader = dict(dataset={val!r})\n'
            'test_dataloader = val_dataloader\n')
        return path

    return write


# ------------------------------------------------------------------------------------ checks
@pytest.fixture
def assert_matches_plain():
    """``check(model, plain, sizes)``: an mmseg FCN's ``predict`` logits against a
    :class:`~fcn_plugin.converters.plain_fcn.PlainFCN`'s at each ``(H, W)``: within 1e-4 of the
    logit range, same argmax."""

    def check(model, plain, sizes):
        for size in sizes:
            x = torch.randn(1, 3, *size) * 50
            with torch.no_grad():
                ours = model.predict(x)[0].seg_logits.data
                theirs = plain(x)[0]
            assert float((ours - theirs).abs().max() / theirs.abs().max()) < 1e-4, size
            assert torch.equal(ours.argmax(0), theirs.argmax(0)), size

    return check
