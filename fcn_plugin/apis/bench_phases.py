"""The phases :func:`fcn_plugin.apis.benchmark` times: the model, its random data, the
contestants of the inference runs (mmseg's predict, the plain module, the ONNX runtimes of
:mod:`.bench_peers`) and the training step."""
import contextlib
import statistics

import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from .measure import agreement, count_flops, measured, timed
from .segmentor import build_segmentor

REFERENCE = 'mmseg'  # the contestant the others are compared with


class BenchmarkError(Exception):
    """A benchmark that cannot run as asked (files, device, options); the tool prints it as
    one line."""


def build_model(cfg, checkpoint, device, seed):
    """:func:`~.segmentor.build_segmentor` (errors as :class:`BenchmarkError`) on ``device``."""
    return build_segmentor(cfg, checkpoint, seed, error=BenchmarkError).to(device)


def make_batch(model, shape, batch, num_classes, device, seed, training):
    """A random uint8 image batch with random labels: the data dict (``training``), else the
    preprocessed ``(inputs, data_samples)`` and the raw images (float32 N x 3 x H x W, 0-255,
    as loaded: what the ONNX graph takes)."""
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
    raw = torch.stack(data['inputs']).float()
    return processed['inputs'].to(device), processed['data_samples'], raw


def build_plain(model):
    """The plain PyTorch module with ``model``'s weights (and memory format)."""
    from ..converters.plain_fcn import plain_fcn_like
    try:
        plain = plain_fcn_like(model).eval()
        if getattr(model, 'channels_last', False):
            plain = plain.to(memory_format=torch.channels_last)
        return plain
    except Exception as e:  # noqa: BLE001 - any mismatch means "not a VGG16 FCN"
        raise BenchmarkError('--compare plain needs a VGG16 FCN-32s/16s/8s config (VGG backbone '
                             '+ FCNSkipHead); building the plain module failed: '
                             f'{type(e).__name__}: {e}')


def plain_context(model, device):
    """The autocast the model's predict runs under, for the plain module."""
    if hasattr(model, 'autocast'):  # AutocastEncoderDecoder
        return model.autocast(device.type)
    return contextlib.nullcontext()


def inference_contestants(model, inputs, samples, raw, device, mem, compare=(), peers=None):
    """``({name: run}, {name: logits function}, {name: extra figures})``: what is timed, the
    reference (:data:`REFERENCE`) first, then the runtimes of ``compare`` in order
    (:mod:`.bench_peers`; ``peers`` for the ONNX runtimes), how each one's logits are got for
    the check against the reference, and its ``held_bytes`` (and ``flops`` where the counter
    cannot see the runtime)."""

    @torch.no_grad()
    def run_mmseg():
        return model.predict(inputs, samples)

    runners, logits, extra, graph_flops = {REFERENCE: run_mmseg}, {}, {}, []
    for name in compare:
        if name == 'plain':
            before = mem.resident()
            plain = build_plain(model)
            plain_inputs = inputs.contiguous(memory_format=torch.channels_last) if getattr(
                model, 'channels_last', False) else inputs

            @torch.no_grad()
            def run_plain(argmax=True):
                with plain_context(model, device):
                    out = plain(plain_inputs).float()
                return out.argmax(1) if argmax else out

            run_plain(False)
            runners['plain'], logits['plain'] = run_plain, (lambda: run_plain(argmax=False))
            extra['plain'] = dict(held_bytes=mem.resident() - before)
        else:
            runners[name], logits[name], held = peers.contestant(name, raw)
            graph_flops = graph_flops or [peers.graph_flops(raw)]  # one graph: counted once
            extra[name] = dict(held_bytes=held, flops=graph_flops[0])
    return runners, logits, extra


def bench_inference(model,
                    shape,
                    batch,
                    device,
                    mem,
                    seed=0,
                    warmup=1,
                    repeat=5,
                    compare=(),
                    peers=None) -> dict:
    """Inference figures of every contestant at ``batch`` images of ``shape``: ``{name:
    figures}`` and ``checks`` (``{name: each one's logits against mmseg's}``), with the plain
    module also ``ratio_mmseg_over_plain``, ``ratio_paired_median`` and ``check``. The
    contestants are interleaved: each round runs every one once, in rotating order (ABBA for
    two)."""
    model.eval()
    num_classes = model.decode_head.num_classes
    inputs, samples, raw = make_batch(model, shape, batch, num_classes, device, seed, False)
    runners, logits, extra = inference_contestants(model, inputs, samples, raw, device, mem,
                                                   compare, peers)
    checks = {}
    if logits:
        with torch.no_grad():
            ours = torch.stack([s.seg_logits.data for s in model.predict(inputs, samples)])
        checks = {name: agreement(ours, fn()) for name, fn in logits.items()}
    # the first warm-up run counts the FLOPs (FlopCounterMode slows it; it is not timed); the
    # ONNX runtimes' counts are their graph's, counted in PyTorch
    flops = {}
    for name, fn in runners.items():
        if name in extra and 'flops' in extra[name]:
            fn()
            flops[name] = extra[name].pop('flops')
        else:
            flops[name] = count_flops(fn, model)
    for _ in range(warmup - 1):
        for fn in runners.values():
            fn()
    times = {k: [] for k in runners}
    order = list(runners)
    for r in range(repeat):
        for name in order[r % len(order):] + order[:r % len(order)]:
            times[name].append(timed(runners[name], device))
    results = {
        name: dict(measured(mem, fn, times[name], flops[name], batch), **extra.get(name, {}))
        for name, fn in runners.items()
    }
    if checks:
        results['checks'] = checks
    if 'plain' in checks:
        results['ratio_mmseg_over_plain'] = (
            results[REFERENCE]['median_s'] / results['plain']['median_s'])
        pair = [a / b for a, b in zip(times[REFERENCE], times['plain'])]
        results['ratio_paired_median'] = statistics.median(pair)
        results['check'] = checks['plain']
    return results


def bench_train(model,
                cfg,
                shape,
                batch,
                device,
                mem,
                precision=None,
                seed=0,
                warmup=1,
                repeat=5) -> dict:
    """Figures of one ``model.train_step`` on ``batch`` random images and labels."""
    from mmengine.optim import build_optim_wrapper
    model.train()
    wrapper_cfg = cfg.get('optim_wrapper') or dict(
        type='OptimWrapper', optimizer=dict(type='SGD', lr=1e-10, momentum=0.99))
    if precision in ('fp16', 'bf16'):  # as tools/train.py --amp
        if device.type != 'cuda':
            raise BenchmarkError('--train with --precision fp16/bf16 uses '
                                 "mmengine's AmpOptimWrapper, which needs a GPU")
        wrapper_cfg = dict(
            wrapper_cfg,
            type='AmpOptimWrapper',
            loss_scale='dynamic',
            dtype={
                'fp16': 'float16',
                'bf16': 'bfloat16'
            }[precision])
    optim_wrapper = build_optim_wrapper(model, wrapper_cfg)
    data = make_batch(
        model, shape, batch, model.decode_head.num_classes, device, seed, training=True)

    def step():
        return model.train_step(data, optim_wrapper)

    flops = count_flops(step)  # doubles as the first warm-up step
    for _ in range(warmup - 1):
        step()
    times = [timed(step, device) for _ in range(repeat)]
    return measured(mem, step, times, flops, batch)
