"""Train and test a config: what ``tools/train.py`` and ``tools/test.py`` (mmseg 1.2.2's command
lines) do, callable from Python::

    from fcn_plugin.apis import test, train
    runner = train('configs/fcn8s_vgg16-tiny_toyvoc.py', work_dir='work_dirs/toy')
    metrics = test('configs/fcn8s_vgg16-tiny_toyvoc.py', 'work_dirs/toy/iter_600.pth')

Differences from mmseg's scripts, all automatic: ``fcn_plugin`` is imported (configs work even
without ``custom_imports``); distributed jobs use ``nccl`` with CUDA and ``gloo`` without, and
on a machine without CUDA the process group and the DDP wrapper are set up for the CPU
(:mod:`fcn_plugin.utils.launch`); a top-level ``--cfg-options`` variable that reaches no field
(``max_iters=...`` instead of ``train_cfg.max_iters=...``) is an error
(:mod:`fcn_plugin.utils.config_vars`); mmengine's checkpoint loaders are weights-only even under
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``. Everything else is the runner's (the plugin's hooks are
named ``default_hooks``), so mmseg's own scripts behave the same on our configs.
"""
import logging
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmseg.registry import RUNNERS

from ..utils.checkpoint_path import require_checkpoint_file
from ..utils.checkpoint_safety import install_safe_checkpoint_loaders
from ..utils.config_vars import ConfigError, load_config
from ..utils.inference_options import set_inference_options
from ..utils.launch import prepare_distributed


def _load(config: str, work_dir: Optional[str], cfg_options: Optional[dict]) -> Config:
    """The config with ``cfg_options`` merged and ``work_dir`` set (CLI > file > the config's
    name under ``./work_dirs``)."""
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file {config} does not exist')
    install_safe_checkpoint_loaders()
    cfg = load_config(config, cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    return cfg


def _build(cfg: Config) -> Runner:
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)


def train(config: str,
          work_dir: Optional[str] = None,
          resume: bool = False,
          amp: bool = False,
          cfg_options: Optional[dict] = None,
          launcher: str = 'none') -> Runner:
    """Train ``config`` (mmseg's ``tools/train.py``); returns the runner after training.

    Args:
        config: config file.
        work_dir: where logs and checkpoints go (default: the config's, else
            ``work_dirs/<config name>``).
        resume: continue the newest complete checkpoint where the checkpoint hook writes them
            (``default_hooks.load_policy``; with ``load_from`` also set, that file only starts a
            run that has no checkpoint yet).
        amp: mixed-precision training (``AmpOptimWrapper``, dynamic loss scale; needs a GPU).
        cfg_options: settings merged into the config (as ``--cfg-options``).
        launcher: ``'none'``, ``'pytorch'`` (torchrun), ``'slurm'`` or ``'mpi'``.
    """
    cfg = _load(config, work_dir, cfg_options)
    if amp:
        if not torch.cuda.is_available():
            raise ConfigError("--amp needs a GPU (mmengine's AmpOptimWrapper only runs on "
                              'CUDA/NPU/MLU/MUSA); on the CPU run without --amp')
        if cfg.optim_wrapper.type == 'AmpOptimWrapper':
            print_log(
                'AMP training is already enabled in your config.',
                logger='current',
                level=logging.WARNING)
        elif cfg.optim_wrapper.type != 'OptimWrapper':
            raise ConfigError('--amp is only supported when optim_wrapper.type is '
                              f"'OptimWrapper', but it is {cfg.optim_wrapper.type!r}")
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    cfg.resume = resume
    prepare_distributed(cfg, launcher)
    runner = _build(cfg)
    runner.train()
    return runner


def test(config: str,
         checkpoint: str,
         work_dir: Optional[str] = None,
         out: Optional[str] = None,
         show: bool = False,
         show_dir: Optional[str] = None,
         wait_time: float = 2,
         tta: bool = False,
         precision: Optional[str] = None,
         channels_last: bool = False,
         cfg_options: Optional[dict] = None,
         launcher: str = 'none') -> dict:
    """Test and evaluate ``checkpoint`` on ``config``'s test split (mmseg's ``tools/test.py``);
    returns the metrics.

    Args:
        out: also save the predictions there (offline evaluation).
        show, show_dir, wait_time: draw the predictions (``default_hooks.visualization``).
        tta: test-time augmentation (the config's ``tta_pipeline`` and ``tta_model``).
        precision, channels_last: inference precision (``'fp32'``, ``'fp16'``, ``'bf16'``) and
            memory format of the ``AutocastEncoderDecoder``.
        Others as :func:`train`.
    """
    require_checkpoint_file(checkpoint)
    cfg = _load(config, work_dir, cfg_options)
    cfg.load_from = checkpoint
    set_inference_options(cfg, precision, channels_last)
    if show or show_dir:
        hook = cfg.default_hooks.get('visualization')
        if hook is None:
            raise ConfigError("--show/--show-dir need default_hooks.visualization, e.g. "
                              "dict(type='SegVisualizationHook')")
        hook.update(draw=True)
        if show:
            hook.update(show=True, wait_time=wait_time)
        if show_dir:
            cfg.visualizer.save_dir = show_dir
    if tta:
        if 'tta_pipeline' not in cfg:
            raise ConfigError(f"--tta needs `tta_pipeline` in {config} (mmseg's dataset bases "
                              'define one)')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if out is not None:
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True
    prepare_distributed(cfg, launcher)
    return _build(cfg).test()


test.__test__ = False  # not a pytest test where a test module imports it
