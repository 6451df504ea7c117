"""Latency, throughput, memory and FLOPs of a segmentor, for inference and training.

What is timed (``torch.no_grad``, for each batch size of the sweep, a fixed random image;
``precision``/``channels_last`` as in ``tools/test.py``, default: the config's fp32):

* inference: ``model.predict(inputs, data_samples)``, mmseg's whole predict path (network,
  crop/resize of the logits to the image, argmax into ``SegDataSample``s). The data
  preprocessor (mean subtraction) runs once beforehand and is not timed.
* ``compare``: other runtimes of the same network with the same weights, timed in the same run,
  interleaved with the plugin's predict (each round runs every contestant once, in rotating
  order: ABBA for two) so that drift in machine load hits all alike; per runtime the ratio of
  its median to predict's, peak memory and a check of its logits against predict's
  (:mod:`.bench_peers`). What is timed for each, on the same random image:

  - ``plain`` (also ``compare_plain``): the network as a plain PyTorch module
    (:class:`fcn_plugin.converters.plain_fcn.PlainFCN`, pytorch-fcn layer names), timed as
    ``plain(inputs).argmax(1)`` on the preprocessed batch predict gets, in the same precision
    and memory format (autocast, channels-last). VGG16 FCN configs only.
  - ``onnxruntime``, ``openvino``: the model's plain ONNX export (made once, before the runs;
    not timed) run on the raw float32 image, as deployed: ``session.run`` /
    ``infer_request.infer`` (the normalisation, which predict gets done beforehand, the network
    and the crop to the image; OpenVINO compiled for the static benchmark shape), then
    ``numpy.argmax`` over the classes. CPU, fp32, NCHW, the thread count torch uses. A runtime
    whose packages are missing (``pip install -e .[onnx]``, ``.[openvino]``) is reported and
    skipped.
* ``train``: one ``model.train_step`` (preprocessing, forward, loss, backward, optimizer step;
  the config's ``optim_wrapper`` if it has one, else SGD) on a random label map; with
  ``precision`` fp16/bf16 mmengine's ``AmpOptimWrapper`` in that dtype (as ``train.py --amp``,
  GPU only).

Figures: median and p90 latency over ``repeat`` runs after ``warmup`` runs (at least one, which
also counts the FLOPs; peak memory is taken in one more run after the timed ones), images/s
(batch / median), FLOPs of one run of the network as defined (the plain forward: the fast CPU
path skips a third of them, and its NNPACK calls are not seen by the counter; for the ONNX
runtimes the exported graph's, counted on its PyTorch module) counted by
``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add is 2 FLOPs; the backward pass is
counted for training), GFLOP/s (network FLOPs / median), and peak memory
(:class:`~.measure.PeakMemory`: the CUDA allocator's peak, or on the CPU the process's
resident-set high-water mark, reset before the run; tracemalloc cannot see torch's
allocations); for the compared runtimes also ``held_bytes``, the resident memory a runtime
keeps between runs (its weights, onnxruntime's arena, OpenVINO's buffers: memory its "+x" run
excess does not show), measured around its creation and a first run.

Without a checkpoint the weights are the config's initialisation with the zero-initialised
score layers given random values, so that predictions (and the plain-module check) are not
trivial; speed does not depend on the values. Nothing is downloaded: ``init_cfg``/``pretrained``
are dropped. The phases are in :mod:`.bench_phases`, the measurements in :mod:`.measure`.
"""
import os.path as osp
from typing import Optional, Sequence, Union

import torch
from mmengine.registry import init_default_scope

from ..utils.checkpoint_safety import install_safe_checkpoint_loaders
from ..utils.config_vars import load_config
from ..utils.inference_options import set_inference_options
from .bench_peers import NEEDS, Peers, available, compare_section, format_table, parse_compare
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
              compare: Union[str, Sequence[str]] = (),
              threads: Optional[int] = None,
              cudnn_benchmark: bool = False,
              precision: Optional[str] = None,
              channels_last: bool = False,
              seed: int = 0,
              cfg_options: Optional[dict] = None,
              onnx_file: Optional[str] = None,
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
        compare_plain: also time a plain PyTorch module with the same weights: the same as
            ``compare='plain'``.
        compare: runtimes to compare with, ``'plain'``, ``'onnxruntime'``, ``'openvino'`` (a
            list or a comma-separated string); missing packages: reported and skipped.
        threads: ``torch.set_num_threads`` (CPU; process-wide); default: torch's choice.
        cudnn_benchmark: set ``torch.backends.cudnn.benchmark`` (process-wide).
        precision: 'fp32', 'fp16' or 'bf16' inference (default: the config's).
        channels_last: channels-last weights and inputs.
        seed: of the weights (without a checkpoint) and of the random images.
        cfg_options: config settings to override, ``{key: value}`` as ``--cfg-options``.
        onnx_file: for the ONNX runtimes, this export of the same config and weights (e.g.
            the file deployed) instead of exporting the model; the logit check says whether it
            is that model.
        verbose: print the figures as they come.

    Returns:
        The figures, as ``tools/benchmark.py --json`` writes them: the set-up (``config``,
        ``shape``, ``device_detail``, ``precision``, ...) and ``runs``, one dict per batch size
        with ``batch_size``, ``inference`` (``mmseg``'s figures, with ``compare_plain`` also
        ``plain``'s, ``ratio_mmseg_over_plain``, ``ratio_paired_median`` and ``check``; with
        ``compare`` each runtime's figures, with its ``held_bytes``, and ``checks``) and with
        ``train`` a ``train`` entry. Figures: ``median_s``, ``p90_s``, ``min_s``,
        ``images_per_s``, ``gflop``, ``gflops_per_s``, ``runs``, ``peak_mem_bytes``,
        ``peak_mem_excess_bytes``, ``mem_how``, ``times_s``. With ``compare`` also
        ``compare``: ``runtimes``, ``skipped`` (``{name: why}``), ``threads``,
        ``onnx_export_s`` (None with ``onnx_file``), ``onnx_file`` and ``runs``, per batch size
        the table's ``rows`` (``runtime``, ``median_s``, ``p90_s``, ``ratio_to_predict``,
        ``ratio_paired_median``, ``peak_mem_bytes``, ``peak_mem_excess_bytes``,
        ``held_bytes``, ``rel_logit_diff`` (max |diff| / max |logit|), ``argmax_agreement``),
        predict's row first.

    Raises:
        BenchmarkError: a missing file, an unavailable device, options that do not fit, an
            unknown runtime in ``compare``.
        ConfigError: ``precision``/``channels_last`` on a model that is not an EncoderDecoder.
    """
    say = _say(verbose)
    if not osp.isfile(config):
        raise BenchmarkError(f'config file {config} does not exist')
    if repeat < 1:
        raise BenchmarkError('--repeat must be >= 1')
    names = parse_compare(compare)
    if onnx_file is not None and not osp.isfile(onnx_file):
        raise BenchmarkError(f'ONNX file {onnx_file} does not exist')
    if compare_plain and 'plain' not in names:
        names.insert(0, 'plain')
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
    onnx_names = [n for n in names if n in NEEDS]
    reduced = cfg.model.get('inference_precision', 'fp32') != 'fp32' or cfg.model.get(
        'channels_last', False)
    if onnx_names and (dev.type != 'cpu' or reduced):
        raise BenchmarkError(f'--compare {",".join(onnx_names)}: the ONNX runtimes are compared '
                             'on the CPU in fp32 NCHW (--device cpu, no --precision/'
                             '--channels-last)')
    skipped = available(names)
    names = [n for n in names if n not in skipped]

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
    for name, why in skipped.items():
        say(f'{name}: {why}, skipped')
    out = dict(header, runs=[])
    with Peers(model, names, (h, w), torch.get_num_threads(), mem, onnx_file) as peers:
        if peers.path and not onnx_file:
            say(f'exported the plain graph to ONNX for {", ".join(peers.names)} in '
                f'{peers.export_s:.1f} s')
        for batch in batch_sizes:
            out['runs'].append(
                bench_batch(model, cfg, (h, w), batch, dev, mem, precision, seed, warmup, repeat,
                            train, names, peers, say))
    say(f'memory: {out["runs"][-1]["inference"]["mmseg"]["mem_how"]}; (+x) = excess over '
        'memory in use before the run')
    if names or skipped:
        out['compare'] = compare_section(out['runs'], names, skipped, torch.get_num_threads(),
                                         peers.export_s)
        out['compare']['onnx_file'] = onnx_file
        for line in format_table(out['compare'], (h, w)):
            say(line)
    return out


def bench_batch(model, cfg, shape, batch, dev, mem, precision, seed, warmup, repeat, train, names,
                peers, say) -> dict:
    """The figures of one batch size (``benchmark``'s ``runs`` entry), printed as they come."""
    inf = bench_inference(model, shape, batch, dev, mem, seed, warmup, repeat, names, peers)
    run = dict(batch_size=batch, inference=inf)
    say(format_row(f'predict x{batch}', inf['mmseg']))
    for name in names:
        say(format_row(f'{name} x{batch}', inf[name]))
        if name == 'plain':
            c = inf['check']
            say(f'ratio mmseg/plain (medians): {inf["ratio_mmseg_over_plain"]:.3f}  '
                f'(median of paired ratios {inf["ratio_paired_median"]:.3f}); max |logit '
                f'diff| {c["max_abs_logit_diff"]:.2e} (max |logit| {c["max_abs_logit"]:.2e}),'
                f' argmax agreement {c["argmax_agreement"] * 100:.2f}%')
    if train:
        # the ONNX runtimes run the weights exported before: the step's update is undone
        state = {k: v.clone() for k, v in model.state_dict().items()} if peers.path else None
        run['train'] = bench_train(model, cfg, shape, batch, dev, mem, precision, seed, warmup,
                                   repeat)
        if state is not None:
            model.load_state_dict(state)
        say(format_row(f'train x{batch}', run['train']))
    return run
