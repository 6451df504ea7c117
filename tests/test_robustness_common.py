"""Shared by the tests/test_robustness_*.py files (no tests here): a tiny VOC-layout dataset
fabricated in a temporary folder, and a tiny FCN-8s training config built on
configs/_base_/fcn_runtime.py, so that a whole mmengine Runner trains in about a second."""
import os
import os.path as osp
import uuid

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from fcn_plugin.datasets.label_png import save_label_png

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NUM_CLASSES = 21  # PascalVOCDataset


def write_label(path, label):
    save_label_png(label, str(path))


def make_voc(root, n_train=6, n_val=2, size=(20, 28), seed=0):
    """VOC2012 layout: JPEGImages/*.jpg, SegmentationClass/*.png (palette, classes 0-20, 255
    borders), ImageSets/Segmentation/{train,val}.txt. Returns the ids of each split."""
    rng = np.random.default_rng(seed)
    root = str(root)
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    ids = {'train': [f'2007_{i:06d}' for i in range(n_train)],
           'val': [f'2008_{i:06d}' for i in range(n_val)]}
    h, w = size
    for split, names in ids.items():
        for name in names:
            label = np.zeros((h, w), np.uint8)
            cls = int(rng.integers(1, NUM_CLASSES))
            y, x = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
            label[y:y + h // 2, x:x + w // 2] = cls
            label[y, x:x + w // 2] = 255  # a void border, as in VOC
            image = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
            image[label == cls] += np.uint8(40 + 8 * cls)
            Image.fromarray(image).save(osp.join(root, 'JPEGImages', name + '.jpg'), quality=90)
            write_label(osp.join(root, 'SegmentationClass', name + '.png'), label)
        with open(osp.join(root, 'ImageSets/Segmentation', split + '.txt'), 'w') as f:
            f.write('\n'.join(names) + '\n')
    return ids


def dataset_cfg(root, split='train', wrap=True, on_error='raise', **wrapper_args):
    """A PascalVOCDataset on ``root`` (optionally inside ValidatedDataset)."""
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


def tiny_cfg(root, work_dir, max_iters=6, lr=1e-3, val_interval=2, ckpt_interval=3,
             custom_hooks=None, **overrides):
    """FCN-8s (VGG11 at 1/16 width, pad 100, dropout 0.5, summed loss as the reference) with
    the runtime of configs/_base_/fcn_runtime.py (its hooks and seed), on :func:`make_voc`;
    the recipes' train loop and sampler (ResumableIterBasedTrainLoop, ResumableInfiniteSampler)."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/fcn_runtime.py'))
    cfg.merge_from_dict(dict(
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
            backbone=dict(type='VGG', depth=11, base_channels=4, fc_channels=16,
                          first_conv_padding=100, dropout_ratio=0.5, out_indices=(2, 3, 5)),
            decode_head=dict(
                type='FCNSkipHead', in_channels=(16, 32, 16), in_index=(0, 1, 2),
                num_classes=NUM_CLASSES,
                loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
                                 reduction='sum')),
            train_cfg=dict(),
            test_cfg=dict(mode='whole')),
        train_dataloader=dict(
            batch_size=1, num_workers=0,
            sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
            dataset=dataset_cfg(root, 'train')),
        val_dataloader=dict(
            batch_size=1, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dataset_cfg(root, 'val')),
        test_dataloader=dict(
            batch_size=1, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dataset_cfg(root, 'val')),
        val_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
        test_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
        optim_wrapper=dict(
            type='OptimWrapper',
            optimizer=dict(type='SGD', lr=lr, momentum=0.99, weight_decay=5e-4),
            paramwise_cfg=dict(bias_lr_mult=2.0, bias_decay_mult=0.0)),
        param_scheduler=[],
        train_cfg=dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters,
                       val_interval=val_interval),
        val_cfg=dict(type='ValLoop'),
        test_cfg=dict(type='TestLoop'),
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=ckpt_interval),
            sampler_seed=dict(type='DistSamplerSeedHook')),
        visualizer=dict(type='SegLocalVisualizer', vis_backends=[], name='visualizer'),
    ))
    if custom_hooks is not None:
        cfg.custom_hooks = cfg.custom_hooks + list(custom_hooks)
    cfg.merge_from_dict(overrides)
    return cfg


def build_runner(cfg):
    """A Runner with its own experiment name (mmengine shares the message hub and logger of
    runners with the same name, which two runners built within one second would get)."""
    from mmengine.runner import Runner
    cfg = cfg.copy()
    cfg.experiment_name = f'robustness_{uuid.uuid4().hex[:12]}'
    return Runner.from_cfg(cfg)


def state_dict_of(path):
    import torch
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.fixture
def one_thread():
    """Tiny convolutions run faster on one thread, and the test machine is shared."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
