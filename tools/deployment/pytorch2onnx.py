"""Export a segmentor to ONNX: raw image in, logits of exactly the image's size out.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT --out FILE.onnx [--opset N]
        [--shape H W] [--check-shapes [N]xHxW ...] [--cfg-options k=v ...]

The graph (``pip install -e .[onnx]`` installs onnx, onnxruntime and onnxscript):

* input ``image``: float32 ``N x 3 x H x W``, raw pixel values 0-255 in the channel order the
  test pipeline loads (mmcv's ``LoadImageFromFile``: BGR). The config's ``data_preprocessor``
  runs inside the graph: the optional channel swap (``bgr_to_rgb``/``rgb_to_bgr``), then
  ``(x - mean) / std``, as mmseg computes it.
* output ``logits``: float32 ``N x num_classes x H x W``, cropped to exactly the input (the
  FCN crops, derived from the layer geometry, are part of the graph); ``argmax`` over axis 1
  gives the labels.
* ``N``, ``H`` and ``W`` are dynamic (named ``batch``, ``height``, ``width``): the export traces
  the model once with symbolic sizes (``torch.export`` with dynamic dims, then torch's ONNX
  exporter), so every size computed from them (feature-map sizes, crop lengths) stays an
  expression of the input's size; the crop offsets are constants. ``--shape`` only sets the
  example input used for tracing and for the first check.

The test pipeline's resizing, if the config has one (the VGG configs do not resize), and the
preprocessor's test-time padding are not part of the graph; inference is whole-image.

After saving, the tool runs the file with onnxruntime on ``--check-shapes`` (default: the traced
size, 375x500, 2x97x131 and 1x1; ``2x97x131`` is a batch of two) and compares with mmseg's own
inference in PyTorch (``model.predict`` on the same raw images through the model's data
preprocessor), printing per size the max absolute difference, the max |logit| and their ratio.
It exits non-zero if any ratio exceeds ``--rtol`` (1e-4). A size the PyTorch model itself
cannot take (e.g. the narrow demo config ``fcn8s_vgg16-tiny_toyvoc.py`` below ~35 px) is reported
and skipped.
"""
import argparse
import os
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from _bootstrap import import_plugin  # noqa: E402  (first: it quiets pkg_resources' warning)
from mmengine.config import Config, DictAction  # noqa: E402

import_plugin()

from mmengine.registry import init_default_scope  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402

from fcn_plugin.models import FCNSkipHead  # noqa: E402

TOOL = 'tools/deployment/pytorch2onnx.py'
INSTALL_HINT = 'pip install -e .[onnx]'
DEFAULT_CHECKS = ('{h}x{w}', '375x500', '2x97x131', '1x1')


class ExportError(Exception):
    """A problem the user can fix; the tool prints it as one line."""


def require_onnx():
    """Import onnx, onnxruntime and onnxscript (the exporter's), or say how to install them."""
    modules = []
    for name in ('onnx', 'onnxruntime', 'onnxscript'):
        try:
            modules.append(__import__(name))
        except ImportError:
            raise ExportError(f'{name} is not installed: {INSTALL_HINT}') from None
    return modules[0], modules[1]


def parse_shape(text: str) -> Tuple[int, int, int]:
    """``'HxW'`` or ``'NxHxW'`` -> ``(N, H, W)``."""
    try:
        dims = tuple(int(v) for v in text.lower().split('x'))
    except ValueError:
        dims = ()
    if len(dims) == 2:
        dims = (1, ) + dims
    if len(dims) != 3 or min(dims) < 1:
        raise ExportError(f'--check-shapes: {text!r} is not HxW or NxHxW with positive sizes')
    return dims


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    if not osp.isfile(path):
        raise ExportError(f'config file {path} does not exist')
    from fcn_plugin.utils.config_vars import load_config as load_checked
    cfg = load_checked(path, cfg_options)
    if 'model' not in cfg:
        raise ExportError(f'config {path} has no "model" key')
    model = cfg.model
    if model.get('type') == 'AutocastEncoderDecoder':  # export the fp32, NCHW network
        model.inference_precision = 'fp32'
        model.channels_last = False
    return cfg


def build_model(cfg: Config, checkpoint: Optional[str] = None, seed: int = 0) -> nn.Module:
    """The segmentor in eval mode on the CPU, SyncBN as BN, weights from ``checkpoint``.

    Nothing is downloaded (``pretrained``/``backbone.init_cfg`` are dropped). Without a
    checkpoint (tests, measurements) the weights are the config's initialisation with the
    zero-initialised score layers drawn at random, so that the logits are not all zero.
    """
    from mmengine.model import revert_sync_batchnorm
    from mmengine.runner import load_checkpoint
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_cfg = cfg.model.copy()
    model_cfg.pop('pretrained', None)
    model_cfg.train_cfg = None
    if isinstance(model_cfg.get('backbone'), dict):
        model_cfg.backbone.init_cfg = None
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    if checkpoint is None:
        torch.manual_seed(seed)
        model.init_weights()
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and not m.weight.detach().any():
                nn.init.normal_(m.weight, std=0.01)
    else:
        if not osp.isfile(checkpoint):
            raise ExportError(f'checkpoint file {checkpoint} does not exist')
        try:
            ckpt = load_checkpoint(
                model, checkpoint, map_location='cpu', strict=True, logger='silent')
        except RuntimeError as e:  # missing / unexpected / mis-shaped keys
            first = str(e).strip().splitlines()
            raise ExportError(f'checkpoint {checkpoint} does not fit the config\'s model: '
                              f'{" ".join(line.strip() for line in first[:3])[:400]}') from e
        except Exception as e:  # unsafe, truncated or not a checkpoint
            raise ExportError(f'checkpoint {checkpoint} cannot be loaded: '
                              f'{type(e).__name__}: {str(e).splitlines()[0][:300]}') from e
        meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
        if 'dataset_meta' in meta:
            model.dataset_meta = meta['dataset_meta']
    return model.eval()


class ONNXSegmentor(nn.Module):
    """``image`` (raw 0-255, N x 3 x H x W) -> ``logits`` (N x K x H x W): what is exported.

    The data preprocessor's channel swap and normalisation, the backbone (and neck), and the
    decode head, whose logits are cropped to the input's ``(H, W)``; the size is passed to
    the head explicitly, so that backbones that do not attach it (ResNet) are cropped as well.
    """

    def __init__(self, segmentor: nn.Module):
        super().__init__()
        head = segmentor.decode_head
        if not isinstance(head, FCNSkipHead):
            raise ExportError(f'decode head {type(head).__name__} (config key '
                              'model.decode_head.type) is not supported: the export crops '
                              "FCNSkipHead's logits to the input")
        self.segmentor = segmentor
        pre = segmentor.data_preprocessor
        self.swap_channels = bool(getattr(pre, 'channel_conversion', False))
        self.normalize = bool(getattr(pre, '_enable_normalize', False))
        if self.normalize:
            self.register_buffer('mean', pre.mean.detach().float().reshape(1, -1, 1, 1).clone())
            self.register_buffer('std', pre.std.detach().float().reshape(1, -1, 1, 1).clone())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image
        if self.swap_channels:  # as mmseg: img[[2, 1, 0], ...]
            x = torch.cat([x[:, 2:3], x[:, 1:2], x[:, 0:1]], dim=1)
        if self.normalize:
            x = (x - self.mean) / self.std
        model = self.segmentor
        feats = model.backbone(x)
        if model.with_neck:
            feats = model.neck(feats)
        return model.decode_head(feats, input_size=image.shape[-2:])


def _backed_size_oblivious():
    """What torch.onnx.export sets around torch.export (sizes 0/1 treated as general)."""
    import contextlib
    try:
        return torch.fx.experimental._config.patch(backed_size_oblivious=True)
    except (AttributeError, KeyError):
        return contextlib.nullcontext()


def export_onnx(wrapper: ONNXSegmentor,
                out: str,
                shape: Sequence[int] = (500, 500),
                opset: Optional[int] = None,
                dynamic_batch: bool = True,
                verbose: bool = False) -> dict:
    """Trace ``wrapper`` with symbolic N, H, W and save the ONNX graph.

    Returns ``seconds`` (the export's time) and ``min_size``: the smallest ``(height, width)``
    the graph takes, as torch.export derived it from the layers (1 for the reference VGG's
    padded conv1_1; smaller inputs fail in the runtime, as they do in PyTorch).
    """
    onnx, _ = require_onnx()
    height, width = shape
    example = random_images(1, height, width, seed=0)
    names = {2: 'height', 3: 'width', 0: 'batch'} if dynamic_batch else {2: 'height', 3: 'width'}
    dims = dict.fromkeys(names, torch.export.Dim.DYNAMIC)
    start = time.perf_counter()
    try:
        with _backed_size_oblivious():
            # runtime asserts instead of guards: sizes the graph cannot take fail in the runtime
            program = torch.export.export(
                wrapper, (example, ),
                dynamic_shapes={'image': dims},
                strict=False,
                prefer_deferred_runtime_asserts_over_guards=True)
    except (torch._dynamo.exc.UserError, ValueError) as e:  # e.g. a size was baked in
        # never fall back to a static graph (torch.onnx.export(model, ...) silently would)
        raise ExportError('the model cannot be exported with dynamic sizes: ' +
                          ' '.join(str(e).split())[:600]) from e
    onnx_program = torch.onnx.export(
        program, (example, ),
        input_names=['image'],
        output_names=['logits'],
        opset_version=opset,
        dynamo=True,
        verbose=verbose)
    written = onnx_program.model.opset_imports.get('')
    if opset is not None and written != opset:  # torch keeps its own opset if it cannot convert
        raise ExportError(f'--opset {opset}: the graph could not be converted to opset {opset} '
                          f'(the exporter writes {written}; 17 and up work)')
    min_size = tuple(_lower_bound(program, axis) for axis in (2, 3))
    graph_input = onnx_program.model.graph.inputs[0]
    onnx_program.rename_axes({
        graph_input.shape[axis]: name
        for axis, name in names.items() if not isinstance(graph_input.shape[axis], int)
    })
    onnx_program.model.metadata_props.update(
        input='image: float32 NCHW, raw 0-255 pixels in the channel order the test pipeline '
        'loads (BGR for mmcv); preprocessing inside: ' + describe_preprocessing(wrapper),
        output='logits: float32 N x num_classes x H x W, argmax over axis 1 = labels',
        min_height=str(min_size[0]),
        min_width=str(min_size[1]))
    classes = getattr(wrapper.segmentor, 'dataset_meta', None) or {}
    if classes.get('classes'):
        onnx_program.model.metadata_props['classes'] = ','.join(map(str, classes['classes']))
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    onnx_program.save(out)  # weights in the file; next to it (out.data) only beyond 2 GB
    seconds = time.perf_counter() - start
    check_io(onnx.load(out, load_external_data=False), dynamic_batch)
    return dict(seconds=seconds, min_size=min_size)


def _lower_bound(program, axis: int) -> int:
    """The smallest value torch.export allows for the image's ``axis`` (1 if unknown)."""
    name = program.graph_signature.user_inputs[0]
    node = next(n for n in program.graph.nodes if n.op == 'placeholder' and n.name == name)
    size = node.meta['val'].shape[axis]
    if not isinstance(size, torch.SymInt):
        return int(size)
    bounds = program.range_constraints.get(size.node.expr)
    return max(int(bounds.lower), 1) if bounds is not None else 1


def check_io(model, dynamic_batch: bool = True) -> None:
    """One input ``image`` and one output ``logits``, with symbolic batch/height/width."""

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    graph = model.graph
    names = ([v.name for v in graph.input], [v.name for v in graph.output])
    if names != (['image'], ['logits']):
        raise ExportError(f'exported graph has inputs/outputs {names}, expected image/logits')
    batch = 'batch' if dynamic_batch else 1
    image, logits = dims(graph.input[0]), dims(graph.output[0])
    if image != [batch, 3, 'height', 'width'
                 ] or logits[:1] + logits[2:] != [batch, 'height', 'width']:
        raise ExportError(f'exported graph is not dynamic as expected: image {image}, '
                          f'logits {logits}')


def describe_preprocessing(wrapper: ONNXSegmentor) -> str:
    steps = ['channels swapped (bgr_to_rgb)'] if wrapper.swap_channels else []
    if wrapper.normalize:

        def fmt(t):
            return '[' + ', '.join(f'{float(v):g}' for v in t.flatten()) + ']'

        steps.append(f'(x - {fmt(wrapper.mean)}) / {fmt(wrapper.std)}')
    return ', then '.join(steps) or 'nothing (no normalisation in the config)'


def random_images(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, h, w), generator=g).float()


def pytorch_logits(segmentor: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """mmseg's own inference on raw images: data preprocessor, then ``predict``."""
    data = segmentor.data_preprocessor(dict(inputs=list(images)), False)
    with torch.no_grad():
        samples = segmentor.predict(data['inputs'], data.get('data_samples'))
    return torch.stack([s.seg_logits.data for s in samples]).float()


def check_onnx(path: str,
               segmentor: nn.Module,
               shapes: Sequence[Tuple[int, int, int]],
               rtol: float = 1e-4,
               seed: int = 0,
               min_size: Tuple[int, int] = (1, 1)) -> List[dict]:
    """onnxruntime vs PyTorch on raw random images of each ``(N, H, W)``; one row per size.

    Sizes under ``min_size`` (what :func:`export_onnx` returns) are skipped, as are sizes the
    PyTorch model raises on.
    """
    _, ort = require_onnx()
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    rows = []
    for i, (n, h, w) in enumerate(shapes):
        if h < min_size[0] or w < min_size[1]:
            rows.append(
                dict(
                    shape=(n, h, w),
                    skipped=f'under the smallest size the model '
                    f'takes, {min_size[0]}x{min_size[1]}'))
            continue
        images = random_images(n, h, w, seed + i)
        try:
            ref = pytorch_logits(segmentor, images)
        except (ValueError, RuntimeError) as e:  # the model itself cannot take this size
            rows.append(
                dict(
                    shape=(n, h, w),
                    skipped='PyTorch cannot run it: ' + ' '.join(str(e).split())[:200]))
            continue
        try:
            got = session.run(['logits'], {'image': images.numpy()})[0]
        except Exception as e:  # noqa: BLE001  (onnxruntime's own exception types)
            rows.append(dict(shape=(n, h, w), error=' '.join(str(e).split())[:300], ok=False))
            continue
        ok_shape = got.shape == tuple(ref.shape)
        ref = ref.numpy()
        max_abs = float(np.abs(got - ref).max()) if ok_shape else float('inf')
        scale = float(np.abs(ref).max())
        rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float('inf'))
        rows.append(
            dict(
                shape=(n, h, w),
                out_shape=tuple(got.shape),
                max_abs=max_abs,
                max_logit=scale,
                rel=rel,
                ok=ok_shape and rel <= rtol))
    return rows


def print_rows(rows: List[dict], rtol: float) -> bool:
    print(f'onnxruntime vs PyTorch (mmseg predict), raw random images; tolerance '
          f'{rtol:g} x max|logit|:')
    for r in rows:
        n, h, w = r['shape']
        name = f'{n}x3x{h}x{w}'
        if 'skipped' in r:
            print(f'  {name:<14} skipped: {r["skipped"]}')
            continue
        if 'error' in r:
            print(f'  {name:<14} onnxruntime failed: {r["error"]}  FAIL')
            continue
        print(f'  {name:<14} logits {"x".join(map(str, r["out_shape"]))}: max abs diff '
              f'{r["max_abs"]:.3e}, max |logit| {r["max_logit"]:.3e}, relative '
              f'{r["rel"]:.3e}  {"OK" if r["ok"] else "FAIL"}')
    checked = [r for r in rows if 'skipped' not in r]
    return bool(checked) and all(r['ok'] for r in checked)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export a segmentor to ONNX (raw 0-255 image in, logits at its size out) '
        'and check it with onnxruntime')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument(
        '--opset',
        type=int,
        default=None,
        help="ONNX opset, 17 or more (default: torch's exporter's, 20 with "
        'torch 2.13)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=(500, 500),
        metavar=('H', 'W'),
        help='example input size for tracing (default 500 500); the graph '
        'takes any size')
    parser.add_argument(
        '--check-shapes',
        nargs='+',
        metavar='[N]xHxW',
        help='sizes to check with onnxruntime (default: the traced size, '
        '375x500, 2x97x131, 1x1)')
    parser.add_argument(
        '--rtol',
        type=float,
        default=1e-4,
        help='max allowed |onnx - torch| / max|logit| (default 1e-4)')
    parser.add_argument('--static-batch', action='store_true', help='fix the batch to 1')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='override config settings, key=value')
    parser.add_argument('--verbose', action='store_true', help="the exporter's progress")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except ExportError as e:
        print(f'{TOOL}: {e}', file=sys.stderr)
        return 1


def run(args) -> int:
    cfg = load_config(args.config, args.cfg_options)
    if not osp.isfile(args.checkpoint):
        raise ExportError(f'checkpoint file {args.checkpoint} does not exist')
    if min(args.shape) < 1:
        raise ExportError(f'--shape {args.shape[0]} {args.shape[1]}: sizes must be positive')
    h, w = args.shape
    checks = [
        parse_shape(s) for s in (args.check_shapes or [c.format(h=h, w=w) for c in DEFAULT_CHECKS])
    ]
    require_onnx()
    segmentor = build_model(cfg, args.checkpoint)
    wrapper = ONNXSegmentor(segmentor).eval()
    try:  # the model must run at the traced size
        pytorch_logits(segmentor, random_images(1, h, w, 0))
    except (ValueError, RuntimeError) as e:
        raise ExportError(f'the model cannot run at --shape {h} {w}: ' +
                          ' '.join(str(e).split())[:300]) from e
    info = export_onnx(
        wrapper,
        args.out, (h, w),
        args.opset,
        dynamic_batch=not args.static_batch,
        verbose=args.verbose)
    import onnx
    model = onnx.load(args.out, load_external_data=False)
    opset = next((o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')), '?')
    batch = 1 if args.static_batch else 'batch'
    print(f'{args.out}: exported in {info["seconds"]:.1f} s (opset {opset}, traced at '
          f'{h}x{w})')
    print(f'  input  image : float32 {batch} x 3 x height x width (height >= '
          f'{info["min_size"][0]}, width >= {info["min_size"][1]}), raw 0-255 pixels as loaded;'
          f' inside the graph: {describe_preprocessing(wrapper)}')
    print(f'  output logits: float32 {batch} x {segmentor.decode_head.num_classes} x height x '
          'width')
    if args.static_batch:
        checks = [(1, ch, cw) for _, ch, cw in checks]
    rows = check_onnx(args.out, segmentor, checks, args.rtol, min_size=info['min_size'])
    if not print_rows(rows, args.rtol):
        print(
            f'{TOOL}: onnxruntime does not match PyTorch within {args.rtol:g} x max|logit| '
            '(or no size could be checked)',
            file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
