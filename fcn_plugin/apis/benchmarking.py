"""Latency, throughput, memory and FLOPs of a segmentor, for inference and training.

What is timed (``torch.no_grad``, for each batch size of the sweep, a fixed random image;
``precision``/``channels_last`` as in ``tools/test.py``, default: the config's fp32):

* inference: ``model.predict(inputs, data_samples)``, mmseg's whole predict path (network,
  crop/resize of the logits to the image, argmax into ``SegDataSample``s). The data
  preprocessor (mean subtraction) runs once beforehand and is not timed.
* ``compare_plain``: the same network as a plain PyTorch module
  (:class:`fcn_plugin.converters.plain_fcn.PlainFCN`, pytorch-fcn layer names) with the same
  weights, timed as ``plain(inputs).argmax(1)`` in the same run, the two interleaved (ABBA
  order) so that drift in machine load hits both alike; the ratio of the medians (mmseg /
  plain) and a check that the two give the same logits. The plain module runs in the same
  precision and memory format (autocast, channels-last). VGG16 FCN configs only.
* ``train``: one ``model.train_step`` (preprocessing, forward, loss, backward, optimizer step;
  the config's ``optim_wrapper`` if it has one, else SGD) on a random label map; with
  ``precision`` fp16/bf16 mmengine's ``AmpOptimWrapper`` in that dtype (as ``train.py --amp``,
  GPU only).

Figures: median and p90 latency over ``repeat`` runs after ``warmup`` runs (at least one, which
also counts the FLOPs; peak memory is taken in one more run after the timed ones), images/s
(batch / median), FLOPs of one run of the network as defined (the plain forward: the fast CPU
path skips a third of them, and its NNPACK calls are not seen by the counter) counted by
``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add is 2 FLOPs; the backward pass is
counted for training), GFLOP/s (network FLOPs / median), and peak memory
(:class:`~.measure.PeakMemory`: the CUDA allocator's peak, or on the CPU the process's
resident-set high-water mark, reset before the run; tracemalloc cannot see torch's
allocations).

Without a checkpoint the weights are the config's initialisation with the zero-initialised
score layers given random values, so that predictions (and the plain-module check) are not
trivial; speed does not depend on the values. Nothing is downloaded: ``init_cfg``/``pretrained``
are dropped. The phases are in :mod:`.bench_phases`, the measurements in :mod:`.measure`.
"""
import os.path as osp
from typing import Optional, Sequence

import torch
from mmengine.registry import init_default_scope

from ..utils.checkpoint_safety import install_safe_checkpoint_loaders
from ..utils.config_vars import load_config
from ..utils.inference_options import set_inference_options
from .bench_phases import BenchmarkError, bench_inference, bench_train, build_model
from .measure import PeakMemory, format_row

__all__ = ['BenchmarkError', 'benchmark']


def _say(verbose: bool):
    return print if verbose else (lambda *args, **kwargs: None)


def benchmark(config: str,
              checkpoint: Optional[str] = None,
              shape: Sequence[int] = (500, 500),
              batch_sizes: Sequence[int] = (1, ),
              device: Optional[str] = None,
              repeat: int = 5,
              warmup: int = 1,
              train: bool = False,
              compare_plain: bool = False,
              threads: Optional[int] = None,
              cudnn_benchmark: bool = False,
              precision: Optional[str] = None,
              channels_last: bool = False,
              seed: int = 0,
              cfg_options: Optional[dict] = None,
              verbose: bool = True) -> dict:
    """Time the model of ``config`` (see the module's description), printing a line per
    figure as it is measured (``verbose``).

    Args:
        config: the config file.
        checkpoint: a checkpoint file (weights-only); None: initialised weights.
        shape: the input's ``(height, width)``.
        batch_sizes: images per run; several make a sweep.
        device: 'cpu' or 'cuda' (default: cuda if available, else cpu).
        repeat: timed runs (at least 1).
        warmup: untimed runs first, the first one counting FLOPs.
        train: also time one training step.
        compare_plain: also time a plain PyTorch module with the same weights.
        threads: ``torch.set_num_threads`` (CPU; process-wide); default: torch's choice.
        cudnn_benchmark: set ``torch.backends.cudnn.benchmark`` (process-wide).
        precision: 'fp32', 'fp16' or 'bf16' inference (default: the config's).
        channels_last: channels-last weights and inputs.
        seed: of the weights (without a checkpoint) and of the random images.
        cfg_options: config settings to override, ``{key: value}`` as ``--cfg-options``.
        verbose: print the figures as they come.

    Returns:
        The figures, as ``tools/benchmark.py --json`` writes them: the set-up (``config``,
        ``shape``, ``device_detail``, ``precision``, ...) and ``runs``, one dict per batch size
        with ``batch_size``, ``inference`` (``mmseg``'s figures, with ``compare_plain`` also
        ``plain``'s, ``ratio_mmseg_over_plain``, ``ratio_paired_median`` and ``check``) and
        with ``train`` a ``train`` entry. Figures: ``median_s``, ``p90_s``, ``min_s``,
        ``images_per_s``, ``gflop``, ``gflops_per_s``, ``runs``, ``peak_mem_bytes``,
        ``peak_mem_excess_bytes``, ``mem_how``, ``times_s``.

    Raises:
        BenchmarkError: a missing file, an unavailable device, options that do not fit.
        ConfigError: ``precision``/``channels_last`` on a model that is not an EncoderDecoder.
    """
    say = _say(verbose)
    if not osp.isfile(config):
        raise BenchmarkError(f'config file {config} does not exist')
    if repeat < 1:
        raise BenchmarkError('--repeat must be >= 1')
    device_name = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device_name == 'cuda' and not torch.cuda.is_available():
        raise BenchmarkError('--device cuda but CUDA is not available')
    dev = torch.device(device_name)
    if threads:
        torch.set_num_threads(threads)
    if cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    install_safe_checkpoint_loaders()
    cfg = set_inference_options(load_config(config, cfg_options), precision, channels_last)

    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = build_model(cfg, checkpoint, dev, seed)
    mem = PeakMemory(dev)
    h, w = shape
    header = dict(
        config=config,
        checkpoint=checkpoint,
        shape=[h, w],
        batch_sizes=list(batch_sizes),
        device=device_name,
        device_detail=(torch.cuda.get_device_name(dev)
                       if dev.type == 'cuda' else f'CPU, {torch.get_num_threads()} threads'),
        precision=getattr(model, 'inference_precision', 'fp32'),
        channels_last=bool(getattr(model, 'channels_last', False)),
        cudnn_benchmark=bool(cudnn_benchmark),
        torch=torch.__version__,
        repeat=repeat,
        warmup=warmup)
    say(f'{config}: {h}x{w}, {header["precision"]}'
        f'{", channels-last" if header["channels_last"] else ""}, {header["device_detail"]}, '
        f'torch {torch.__version__}, {warmup} warm-up + {repeat} timed runs')
    out = dict(header, runs=[])
    for batch in batch_sizes:
        inf = bench_inference(model, (h, w), batch, dev, mem, seed, warmup, repeat, compare_plain)
        run = dict(batch_size=batch, inference=inf)
        say(format_row(f'predict x{batch}', inf['mmseg']))
        if compare_plain:
            say(format_row(f'plain x{batch}', inf['plain']))
            c = inf['check']
            say(f'ratio mmseg/plain (medians): {inf["ratio_mmseg_over_plain"]:.3f}  '
                f'(median of paired ratios {inf["ratio_paired_median"]:.3f}); max |logit '
                f'diff| {c["max_abs_logit_diff"]:.2e} (max |logit| {c["max_abs_logit"]:.2e}),'
                f' argmax agreement {c["argmax_agreement"] * 100:.2f}%')
        if train:
            run['train'] = bench_train(model, cfg, (h, w), batch, dev, mem, precision, seed, warmup,
                                       repeat)
            say(format_row(f'train x{batch}', run['train']))
        out['runs'].append(run)
    say(f'memory: {inf["mmseg"]["mem_how"]}; (+x) = excess over memory in use before the run')
    return out
