"""Latency, throughput, memory and FLOPs of a segmentor, for inference and (--train) training.

    python tools/benchmark.py CONFIG [CHECKPOINT] [--shape H W] [--device cpu|cuda]
        [--batch-size N [N ...]] [--precision fp32|fp16|bf16] [--channels-last]
        [--cudnn-benchmark] [--repeat N] [--warmup N] [--train] [--compare-plain]
        [--threads N] [--json OUT]

What is timed (``torch.no_grad``, for each ``--batch-size`` of the sweep, a fixed random image;
``--precision``/``--channels-last`` as in ``tools/test.py``, default: the config's fp32):

* inference: ``model.predict(inputs, data_samples)``, mmseg's whole predict path (network,
  crop/resize of the logits to the image, argmax into ``SegDataSample``s). The data
  preprocessor (mean subtraction) runs once beforehand and is not timed.
* ``--compare-plain``: the same network as a plain PyTorch module
  (:class:`fcn_plugin.converters.plain_fcn.PlainFCN`, pytorch-fcn layer names) with the same
  weights, timed as ``plain(inputs).argmax(1)`` in the same run, the two interleaved (ABBA
  order) so that drift in machine load hits both alike. Prints the ratio of the medians
  (mmseg / plain) and checks the two give the same logits. The plain module runs in the same
  precision and memory format (autocast, channels-last). VGG16 FCN configs only.
* ``--train``: one ``model.train_step`` (preprocessing, forward, loss, backward, optimizer step;
  the config's ``optim_wrapper`` if it has one, else SGD) on a random label map; with
  ``--precision fp16/bf16`` mmengine's ``AmpOptimWrapper`` in that dtype (as ``train.py --amp``,
  GPU only).

Reported: median and p90 latency over ``--repeat`` runs after ``--warmup`` runs (at least one,
which also counts the FLOPs; peak memory is taken in one more run after the timed ones), images/s
(batch / median), FLOPs of one run of the network as defined (the plain forward: the fast CPU
path skips a third of them, and its NNPACK calls are not seen by the counter) counted by
``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add is 2 FLOPs; the backward pass is
counted for ``--train``), GFLOP/s (network FLOPs / median), and peak memory:

* CUDA: ``torch.cuda.max_memory_allocated`` during one run; "+x" is its excess over the memory
  allocated before the run (weights, inputs).
* CPU: the process's resident-set high-water mark (``VmHWM`` in ``/proc/self/status``) during
  one run, after resetting it (``echo 5 > /proc/self/clear_refs``) and returning freed heap
  pages to the OS (glibc ``malloc_trim``); "+x" is its excess over the resident set before the
  run. tracemalloc cannot see torch's allocations. Where the mark cannot be reset (not Linux),
  the process's lifetime peak (``ru_maxrss``) is shown instead and marked so.

Without a CHECKPOINT the weights are the config's initialisation with the zero-initialised score
layers given random values, so that predictions (and the plain-module check) are not trivial;
speed does not depend on the values. Nothing is downloaded: ``init_cfg``/``pretrained`` are
dropped.
"""
import argparse
import contextlib
import ctypes
import gc
import json
import os
import os.path as osp
import statistics
import time

import torch
import torch.nn as nn
from _bootstrap import import_plugin  # first: it quiets the pkg_resources warning
from mmengine.config import DictAction

import_plugin()

from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.structures import PixelData  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402
from mmseg.structures import SegDataSample  # noqa: E402

from fcn_plugin.utils.config_vars import load_config  # noqa: E402
from fcn_plugin.utils.inference_options import add_inference_args  # noqa: E402
from fcn_plugin.utils.inference_options import apply_inference_args


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Benchmark a segmentor (speed, memory, FLOPs)')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        default=None,
        help='checkpoint (optional: without it, initialised weights)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=[500, 500],
        metavar=('H', 'W'),
        help='input height and width (default 500 500, a VOC-sized image)')
    parser.add_argument(
        '--batch-size',
        type=int,
        nargs='+',
        default=[1],
        help='images per run; several values make a sweep (default 1)')
    parser.add_argument(
        '--device',
        choices=['cpu', 'cuda'],
        default=None,
        help='default: cuda if available, else cpu')
    parser.add_argument('--repeat', type=int, default=5, help='timed runs (default 5)')
    parser.add_argument(
        '--warmup',
        type=int,
        default=1,
        help='untimed runs first, the first one counting FLOPs (default 1)')
    parser.add_argument('--train', action='store_true', help='also time one training step')
    parser.add_argument(
        '--compare-plain',
        action='store_true',
        help='also time a plain PyTorch module with the same weights')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch.set_num_threads (CPU); default: torch\'s choice')
    parser.add_argument(
        '--cudnn-benchmark',
        action='store_true',
        help='torch.backends.cudnn.benchmark (sizes repeat here)')
    add_inference_args(parser)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default=None, help='also write the figures to this JSON file')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='override config settings, key=value')
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- measurement
class PeakMemory:
    """Peak memory of one call: CUDA allocator peak, or the process RSS high-water mark."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cpu_resettable = device.type == 'cpu' and self._can_reset_hwm()
        try:
            self._libc = ctypes.CDLL('libc.so.6')
        except OSError:
            self._libc = None

    @staticmethod
    def _status_kib(field: str) -> int:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
        raise KeyError(field)

    @staticmethod
    def _can_reset_hwm() -> bool:
        try:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')
            PeakMemory._status_kib('VmHWM')
            return True
        except (OSError, KeyError):
            return False

    def measure(self, fn):
        """Run ``fn()`` once; returns ``(peak_bytes, excess_bytes_over_before, how)``."""
        gc.collect()
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            before = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            fn()
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
            return peak, peak - before, 'torch.cuda.max_memory_allocated'
        if self._libc is not None:
            self._libc.malloc_trim(0)  # give freed heap pages back so RSS starts low
        if self.cpu_resettable:
            before = self._status_kib('VmRSS') * 1024
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # reset VmHWM to the current RSS
            fn()
            peak = self._status_kib('VmHWM') * 1024
            return peak, peak - before, 'RSS high-water mark (VmHWM)'
        import resource
        fn()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return peak, float('nan'), 'process lifetime peak RSS (ru_maxrss, not resettable)'


def count_flops(fn, model=None) -> int:
    """FLOPs of one ``fn()``, with ``model``'s fast inference paths off: the network's FLOPs."""
    from torch.utils.flop_counter import FlopCounterMode
    fast = [
        m for m in (model.modules() if model is not None else ())
        if getattr(m, 'fast_inference', False)
    ]
    for m in fast:
        m.fast_inference = False
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
    finally:
        for m in fast:
            m.fast_inference = True
    return int(counter.get_total_flops())


def timed(fn, device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def percentile(values, q):
    """Linear-interpolated percentile (q in [0, 100]) of a non-empty list."""
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summarize(times, flops, batch):
    med = statistics.median(times)
    return dict(
        median_s=med,
        p90_s=percentile(times, 90),
        min_s=min(times),
        images_per_s=batch / med,
        gflop=flops / 1e9,
        gflops_per_s=flops / 1e9 / med,
        runs=len(times))


# ----------------------------------------------------------------------------- model & data
def build_model(cfg, checkpoint, device, seed):
    """Build ``cfg.model`` without downloading anything; load ``checkpoint`` if given."""
    model_cfg = cfg.model
    model_cfg.pop('pretrained', None)
    model_cfg.setdefault('backbone', {})['init_cfg'] = None
    model = MODELS.build(model_cfg)
    torch.manual_seed(seed)
    model.init_weights()
    if checkpoint:
        if not osp.isfile(checkpoint):
            raise SystemExit(f'tools/benchmark.py: checkpoint {checkpoint} does not exist')
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    else:
        # zero-initialised score layers would make every prediction class 0
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and not m.weight.detach().any():
                nn.init.normal_(m.weight, std=1e-3)
    return model.to(device)


def make_batch(model, shape, batch, num_classes, device, seed, training):
    """Preprocessed ``(inputs, data_samples)`` for a random uint8 image batch."""
    g = torch.Generator().manual_seed(seed)
    h, w = shape
    data = dict(inputs=[], data_samples=[])
    for _ in range(batch):
        data['inputs'].append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        sample = SegDataSample(
            metainfo=dict(
                img_shape=(h, w),
                ori_shape=(h, w),
                pad_shape=(h, w),
                padding_size=[0, 0, 0, 0],
                scale_factor=(1.0, 1.0),
                flip=False))
        label = torch.randint(0, num_classes, (1, h, w), generator=g)
        sample.gt_sem_seg = PixelData(data=label)
        data['data_samples'].append(sample)
    if training:
        return data
    processed = model.data_preprocessor(data, False)
    return processed['inputs'].to(device), processed['data_samples']


def build_plain(model):
    from fcn_plugin.converters.plain_fcn import plain_fcn_like
    try:
        plain = plain_fcn_like(model).eval()
        if getattr(model, 'channels_last', False):
            plain = plain.to(memory_format=torch.channels_last)
        return plain
    except Exception as e:  # noqa: BLE001 - any mismatch means "not a VGG16 FCN"
        raise SystemExit('tools/benchmark.py: --compare-plain needs a VGG16 FCN-32s/16s/8s '
                         f'config (VGG backbone + FCNSkipHead); building the plain module '
                         f'failed: {type(e).__name__}: {e}')


# ----------------------------------------------------------------------------- phases
def plain_context(model, device):
    """The autocast the model's predict runs under, for the plain module."""
    if hasattr(model, 'autocast'):  # AutocastEncoderDecoder
        return model.autocast(device.type)
    return contextlib.nullcontext()


def bench_inference(model, args, batch, device, mem):
    model.eval()
    num_classes = model.decode_head.num_classes
    inputs, samples = make_batch(
        model, args.shape, batch, num_classes, device, args.seed, training=False)
    plain = build_plain(model) if args.compare_plain else None
    plain_inputs = inputs.contiguous(
        memory_format=torch.channels_last) if getattr(model, 'channels_last', False) else inputs

    @torch.no_grad()
    def run_mmseg():
        return model.predict(inputs, samples)

    @torch.no_grad()
    def run_plain():
        with plain_context(model, device):
            return plain(plain_inputs).float().argmax(1)

    results = {}
    check = None
    if plain is not None:
        with torch.no_grad():
            ours = torch.stack([s.seg_logits.data for s in model.predict(inputs, samples)])
            with plain_context(model, device):
                theirs = plain(plain_inputs).float()
        check = dict(
            max_abs_logit_diff=float((ours - theirs).abs().max()),
            max_abs_logit=float(theirs.abs().max()),
            argmax_agreement=float((ours.argmax(1) == theirs.argmax(1)).float().mean()))

    runners = {'mmseg': run_mmseg}
    if plain is not None:
        runners['plain'] = run_plain
    # the first warm-up run counts the FLOPs (FlopCounterMode slows it; it is not timed)
    flops = {name: count_flops(fn, model) for name, fn in runners.items()}
    for _ in range(args.warmup - 1):
        for fn in runners.values():
            fn()
    times = {k: [] for k in runners}
    order = list(runners)
    for r in range(args.repeat):
        for name in (order if r % 2 == 0 else order[::-1]):  # ABBA
            times[name].append(timed(runners[name], device))
    for name, fn in runners.items():
        peak, excess, how = mem.measure(fn)
        results[name] = dict(
            summarize(times[name], flops[name], batch),
            peak_mem_bytes=peak,
            peak_mem_excess_bytes=excess,
            mem_how=how,
            times_s=times[name])
    if plain is not None:
        results['ratio_mmseg_over_plain'] = (
            results['mmseg']['median_s'] / results['plain']['median_s'])
        pair = [a / b for a, b in zip(times['mmseg'], times['plain'])]
        results['ratio_paired_median'] = statistics.median(pair)
        results['check'] = check
    return results


def bench_train(model, cfg, args, batch, device, mem):
    from mmengine.optim import build_optim_wrapper
    model.train()
    wrapper_cfg = cfg.get('optim_wrapper') or dict(
        type='OptimWrapper', optimizer=dict(type='SGD', lr=1e-10, momentum=0.99))
    if args.precision in ('fp16', 'bf16'):  # as tools/train.py --amp
        if device.type != 'cuda':
            raise SystemExit('tools/benchmark.py: --train with --precision fp16/bf16 uses '
                             "mmengine's AmpOptimWrapper, which needs a GPU")
        wrapper_cfg = dict(
            wrapper_cfg,
            type='AmpOptimWrapper',
            loss_scale='dynamic',
            dtype={
                'fp16': 'float16',
                'bf16': 'bfloat16'
            }[args.precision])
    optim_wrapper = build_optim_wrapper(model, wrapper_cfg)
    data = make_batch(
        model, args.shape, batch, model.decode_head.num_classes, device, args.seed, training=True)

    def step():
        return model.train_step(data, optim_wrapper)

    flops = count_flops(step)  # doubles as the first warm-up step
    for _ in range(args.warmup - 1):
        step()
    times = [timed(step, device) for _ in range(args.repeat)]
    peak, excess, how = mem.measure(step)
    return dict(
        summarize(times, flops, batch),
        peak_mem_bytes=peak,
        peak_mem_excess_bytes=excess,
        mem_how=how,
        times_s=times)


# ----------------------------------------------------------------------------- report
def fmt_bytes(n):
    if n != n:  # nan
        return 'n/a'
    return f'{n / 2**20:.0f} MiB'


def print_row(name, r):
    print(f'{name:<14} median {r["median_s"] * 1e3:9.1f} ms  p90 {r["p90_s"] * 1e3:9.1f} ms  '
          f'{r["images_per_s"]:7.3f} img/s  {r["gflop"]:8.1f} GFLOP  '
          f'{r["gflops_per_s"]:7.1f} GFLOP/s  peak mem {fmt_bytes(r["peak_mem_bytes"])} '
          f'(+{fmt_bytes(r["peak_mem_excess_bytes"])})')


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise SystemExit(f'tools/benchmark.py: config file {args.config} does not exist')
    if args.repeat < 1:
        raise SystemExit('tools/benchmark.py: --repeat must be >= 1')
    device_name = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device_name == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('tools/benchmark.py: --device cuda but CUDA is not available')
    device = torch.device(device_name)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    cfg = load_config(args.config, args.cfg_options)
    apply_inference_args(cfg, args, 'tools/benchmark.py')

    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = build_model(cfg, args.checkpoint, device, args.seed)
    mem = PeakMemory(device)
    h, w = args.shape
    header = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        shape=[h, w],
        batch_sizes=args.batch_size,
        device=device_name,
        device_detail=(torch.cuda.get_device_name(device)
                       if device.type == 'cuda' else f'CPU, {torch.get_num_threads()} threads'),
        precision=getattr(model, 'inference_precision', 'fp32'),
        channels_last=bool(getattr(model, 'channels_last', False)),
        cudnn_benchmark=bool(args.cudnn_benchmark),
        torch=torch.__version__,
        repeat=args.repeat,
        warmup=args.warmup)
    print(f'{args.config}: {h}x{w}, {header["precision"]}'
          f'{", channels-last" if header["channels_last"] else ""}, {header["device_detail"]}, '
          f'torch {torch.__version__}, {args.warmup} warm-up + {args.repeat} timed runs')
    out = dict(header, runs=[])
    for batch in args.batch_size:
        run = dict(batch_size=batch, inference=bench_inference(model, args, batch, device, mem))
        inf = run['inference']
        print_row(f'predict x{batch}', inf['mmseg'])
        if args.compare_plain:
            print_row(f'plain x{batch}', inf['plain'])
            c = inf['check']
            print(f'ratio mmseg/plain (medians): {inf["ratio_mmseg_over_plain"]:.3f}  '
                  f'(median of paired ratios {inf["ratio_paired_median"]:.3f}); max |logit '
                  f'diff| {c["max_abs_logit_diff"]:.2e} (max |logit| {c["max_abs_logit"]:.2e}),'
                  f' argmax agreement {c["argmax_agreement"] * 100:.2f}%')
        if args.train:
            run['train'] = bench_train(model, cfg, args, batch, device, mem)
            print_row(f'train x{batch}', run['train'])
        out['runs'].append(run)
    print(f'memory: {inf["mmseg"]["mem_how"]}; (+x) = excess over memory in use before the run')
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=2)
        print(f'figures written to {args.json}')
    return out


if __name__ == '__main__':
    main()
