"""The module that is exported to ONNX and the export itself (see :mod:`fcn_plugin.apis.export`).

:class:`ONNXSegmentor` is the network as the graph computes it (raw image in, logits of the
image's size out); :func:`export_graph` traces it with symbolic sizes and saves the file;
:func:`check_io` checks the saved graph's inputs and outputs. onnx, onnxruntime and onnxscript
are imported only when needed (:func:`require_onnx`).
"""
import contextlib
import os
import os.path as osp
import time
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models import FCNSkipHead

INSTALL_HINT = 'pip install -e .[onnx]'


class ExportError(Exception):
    """A problem the user can fix (files, config, sizes, missing packages); the tool prints it
    as one line."""


def require_onnx():
    """Import onnx, onnxruntime and onnxscript (the exporter's), or say how to install them.

    Returns:
        ``(onnx, onnxruntime)``, the modules.
    """
    modules = []
    for name in ('onnx', 'onnxruntime', 'onnxscript'):
        try:
            modules.append(__import__(name))
        except ImportError:
            raise ExportError(f'{name} is not installed: {INSTALL_HINT}') from None
    return modules[0], modules[1]


def random_images(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    """``n`` random raw images (float32 0-255, ``n x 3 x h x w``), the same for a ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, h, w), generator=g).float()


class ONNXSegmentor(nn.Module):
    """``image`` (raw 0-255, N x 3 x H x W) -> ``logits`` (N x K x H x W): what is exported.

    The data preprocessor's channel swap and normalisation, the backbone (and neck), and the
    decode head, whose logits are cropped to the input's ``(H, W)``; the size is passed to
    the head explicitly, so that backbones that do not attach it (ResNet) are cropped as well.

    A backbone with a ``min_input_size`` above 1 (the VGG with a small conv1_1 padding, e.g.
    the tiny demo config's 16: 35 px) pads smaller images in PyTorch with zeros at the bottom
    and right, after normalisation, and the head crops the logits back to the image. That
    depends on the traced size, so the graph does it here with sizes computed from the input:
    ``max(min_input_size - H, 0)`` rows and ``max(min_input_size - W, 0)`` columns, i.e.
    nothing for images of the minimum size or larger (the same logits as without the pad).
    Backbones that take any size (the reference VGG: 1 px) get no pad in the graph.
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
        self.min_input_size = int(getattr(segmentor.backbone, 'min_input_size', 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image
        if self.swap_channels:  # as mmseg: img[[2, 1, 0], ...]
            x = torch.cat([x[:, 2:3], x[:, 1:2], x[:, 0:1]], dim=1)
        if self.normalize:
            x = (x - self.mean) / self.std
        if self.min_input_size > 1:  # as VGG.forward pads small images (see above)
            short_h = torch.sym_max(self.min_input_size - x.shape[2], 0)
            short_w = torch.sym_max(self.min_input_size - x.shape[3], 0)
            x = F.pad(x, (0, short_w, 0, short_h))
        model = self.segmentor
        feats = model.backbone(x)
        if model.with_neck:
            feats = model.neck(feats)
        return model.decode_head(feats, input_size=image.shape[-2:])


def describe_preprocessing(wrapper: ONNXSegmentor) -> str:
    """What the graph does to the raw image before the network, in words."""
    steps = ['channels swapped (bgr_to_rgb)'] if wrapper.swap_channels else []
    if wrapper.normalize:

        def fmt(t):
            return '[' + ', '.join(f'{float(v):g}' for v in t.flatten()) + ']'

        steps.append(f'(x - {fmt(wrapper.mean)}) / {fmt(wrapper.std)}')
    if wrapper.min_input_size > 1:
        size = wrapper.min_input_size
        steps.append(f'a side under {size} px padded with zeros at the bottom/right to {size} '
                     '(as the PyTorch backbone does; the logits are cropped back to the image)')
    return ', then '.join(steps) or 'nothing (no normalisation in the config)'


def _backed_size_oblivious():
    """What torch.onnx.export sets around torch.export (sizes 0/1 treated as general)."""
    try:
        return torch.fx.experimental._config.patch(backed_size_oblivious=True)
    except (AttributeError, KeyError):
        return contextlib.nullcontext()


def export_graph(wrapper: ONNXSegmentor,
                 out: str,
                 shape: Sequence[int] = (500, 500),
                 opset: Optional[int] = None,
                 dynamic_batch: bool = True,
                 verbose: bool = False) -> dict:
    """Trace ``wrapper`` with symbolic N, H, W (``torch.export``, then torch's ONNX exporter)
    and save the ONNX graph to ``out``.

    Args:
        wrapper: the module to export, in eval mode.
        out: the .onnx file to write (its folder is created).
        shape: ``(height, width)`` of the example input used for tracing.
        opset: the ONNX opset (default: the exporter's); one it cannot convert to is an error.
        dynamic_batch: a symbolic batch (else the batch is fixed to 1).
        verbose: the exporter's progress.

    Returns:
        ``dict(seconds=..., min_size=(height, width))``: the export's time, and the smallest
        size the graph takes, as torch.export derived it from the layers: 1 for the VGG configs
        (the reference's conv1_1 padding takes any size; a smaller one, as the tiny demo
        config's, is completed by :class:`ONNXSegmentor`'s pad). A backbone with a larger
        minimum and no pad fails in the runtime below it, as it does in PyTorch.

    Raises:
        ExportError: onnx packages missing, a size baked into the graph, an unsupported opset.
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
    """Check an ONNX ``model`` (an ``onnx.ModelProto``): one input ``image`` and one output
    ``logits``, with symbolic batch (or 1), height and width; an :class:`ExportError` if not."""

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
