"""Export a segmentor to ONNX: raw image in, logits of exactly the image's size out.

The graph (``pip install -e .[onnx]`` installs onnx, onnxruntime and onnxscript):

* input ``image``: float32 ``N x 3 x H x W``, raw pixel values 0-255 in the channel order the
  test pipeline loads (mmcv's ``LoadImageFromFile``: BGR). The config's ``data_preprocessor``
  runs inside the graph: the optional channel swap (``bgr_to_rgb``/``rgb_to_bgr``), then
  ``(x - mean) / std``, as mmseg computes it.
* output ``logits``: float32 ``N x num_classes x H x W``, cropped to exactly the input (the
  FCN crops, derived from the layer geometry, are part of the graph); ``argmax`` over axis 1
  gives the labels.
* images smaller than the backbone's ``min_input_size`` (only the VGG with a small conv1_1
  padding: the demo config ``fcn8s_vgg16-tiny_toyvoc.py`` needs 35 px a side; the reference's
  padding of 100 takes 1 px) are padded inside the graph as the PyTorch backbone pads them,
  with zeros at the bottom and right after normalisation, and the logits are cropped back:
  every size from 1x1 runs and gives PyTorch's logits, and images of the minimum size or
  larger are not padded (:class:`~.onnx_graph.ONNXSegmentor`).
* ``N``, ``H`` and ``W`` are dynamic (named ``batch``, ``height``, ``width``): the export traces
  the model once with symbolic sizes (``torch.export`` with dynamic dims, then torch's ONNX
  exporter), so every size computed from them (feature-map sizes, crop lengths) stays an
  expression of the input's size; the crop offsets are constants. ``shape`` only sets the
  example input used for tracing and for the first check.

The test pipeline's resizing, if the config has one (the VGG configs do not resize), and the
preprocessor's test-time padding are not part of the graph; inference is whole-image.

After saving, :func:`export_onnx` runs the file with onnxruntime on ``check_shapes`` (default:
the traced size, 375x500, 2x97x131 and 1x1; ``2x97x131`` is a batch of two) and compares with
mmseg's own inference in PyTorch (``model.predict`` on the same raw images through the model's
data preprocessor): per size the max absolute difference, the max |logit| and their ratio,
which must not exceed ``rtol`` (1e-4). A size the PyTorch model itself cannot take is reported
and skipped.

The parts (:mod:`.onnx_graph`: the exported module and the export; :mod:`.onnx_check`: the
comparison) are separate so that another export variant can reuse the loading and the check.
"""
import os.path as osp
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmengine.config import Config

from ..utils.checkpoint_path import require_checkpoint_file
from ..utils.checkpoint_safety import install_safe_checkpoint_loaders
from ..utils.config_vars import load_config as load_checked
from .onnx_check import check_onnx, checks_passed, format_checks, pytorch_logits
from .onnx_graph import (ExportError, ONNXSegmentor, describe_preprocessing, export_graph,
                         random_images, require_onnx)
from .segmentor import build_segmentor

__all__ = [
    'ExportError', 'ExportResult', 'export_onnx', 'load_config', 'build_model', 'parse_shape'
]

DEFAULT_CHECKS = ('{h}x{w}', '375x500', '2x97x131', '1x1')


def parse_shape(text: Union[str, Sequence[int]]) -> Tuple[int, int, int]:
    """``'HxW'`` or ``'NxHxW'`` (or a tuple of 2 or 3 ints) -> ``(N, H, W)``."""
    if isinstance(text, str):
        try:
            dims = tuple(int(v) for v in text.lower().split('x'))
        except ValueError:
            dims = ()
    else:
        dims = tuple(int(v) for v in text)
    if len(dims) == 2:
        dims = (1, ) + dims
    if len(dims) != 3 or min(dims) < 1:
        raise ExportError(f'--check-shapes: {text!r} is not HxW or NxHxW with positive sizes')
    return dims


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """The config file ``path`` with ``cfg_options`` merged, its model set to fp32 NCHW (an
    ``AutocastEncoderDecoder``'s precision options are what is exported otherwise)."""
    if not osp.isfile(path):
        raise ExportError(f'config file {path} does not exist')
    cfg = load_checked(path, cfg_options)
    if 'model' not in cfg:
        raise ExportError(f'config {path} has no "model" key')
    model = cfg.model
    if model.get('type') == 'AutocastEncoderDecoder':  # export the fp32, NCHW network
        model.inference_precision = 'fp32'
        model.channels_last = False
    return cfg


def build_model(cfg: Config, checkpoint: Optional[str] = None, seed: int = 0) -> nn.Module:
    """The segmentor to export (:func:`~.segmentor.build_segmentor`; errors as
    :class:`ExportError`), without its training settings."""
    cfg = cfg.copy()
    cfg.model.train_cfg = None
    return build_segmentor(cfg, checkpoint, seed, error=ExportError)


@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote and how the file compared with PyTorch."""
    out: str  # the .onnx file
    seconds: float  # the export's time (tracing, conversion, saving)
    opset: Union[int, str]  # the opset the file declares ('?' if none)
    shape: Tuple[int, int]  # the traced (height, width)
    min_size: Tuple[int, int]  # the smallest (height, width) the graph takes
    batch: Union[int, str]  # 'batch' (dynamic) or 1
    num_classes: int
    preprocessing: str  # what the graph does to the raw image, in words
    rtol: float
    checks: List[dict] = field(default_factory=list)  # onnx_check.check_onnx's rows

    @property
    def ok(self) -> bool:
        """Some size was checked, and every checked size is within ``rtol``."""
        return checks_passed(self.checks)

    def lines(self) -> List[str]:
        """The report the export tool prints."""
        (h, w), batch = self.shape, self.batch
        return [
            f'{self.out}: exported in {self.seconds:.1f} s (opset {self.opset}, traced at '
            f'{h}x{w})',
            f'  input  image : float32 {batch} x 3 x height x width (height >= '
            f'{self.min_size[0]}, width >= {self.min_size[1]}), raw 0-255 pixels as loaded; '
            f'inside the graph: {self.preprocessing}',
            f'  output logits: float32 {batch} x {self.num_classes} x height x width',
        ] + format_checks(self.checks, self.rtol)


def export_onnx(config: str,
                checkpoint: Optional[str],
                out: str,
                opset: Optional[int] = None,
                shape: Sequence[int] = (500, 500),
                check_shapes: Optional[Sequence[Union[str, Sequence[int]]]] = None,
                rtol: float = 1e-4,
                static_batch: bool = False,
                cfg_options: Optional[dict] = None,
                verbose: bool = False) -> ExportResult:
    """Export the model of ``config`` with the weights of ``checkpoint`` to the ONNX file
    ``out`` (raw image in, logits at its size out; see the module's description), then check
    the file with onnxruntime against mmseg's inference in PyTorch.

    Args:
        config: the config file.
        checkpoint: the checkpoint file (loaded weights-only); None: the config's
            initialisation with random score layers (for tests and measurements).
        out: the .onnx file to write.
        opset: the ONNX opset, 17 or more (default: torch's exporter's).
        shape: ``(height, width)`` of the example input for tracing; the graph takes any size.
        check_shapes: sizes to check, ``'HxW'``/``'NxHxW'`` or tuples (default: the traced
            size, 375x500, 2x97x131, 1x1).
        rtol: the largest allowed max |onnx - torch| / max |logit|.
        static_batch: fix the batch to 1 (the checks then use batch 1).
        cfg_options: config settings to override, ``{key: value}`` as ``--cfg-options``.
        verbose: the exporter's progress.

    Returns:
        An :class:`ExportResult`; its ``ok`` says whether every checked size matched.

    Raises:
        ExportError: a missing or unfitting file, a size the model cannot take, missing onnx
            packages, a model that cannot be exported with dynamic sizes.
    """
    install_safe_checkpoint_loaders()
    cfg = load_config(config, cfg_options)
    if checkpoint is not None:
        require_checkpoint_file(checkpoint, 'checkpoint file', ExportError)
    if min(shape) < 1:
        raise ExportError(f'--shape {shape[0]} {shape[1]}: sizes must be positive')
    h, w = shape
    checks = [
        parse_shape(s) for s in (check_shapes or [c.format(h=h, w=w) for c in DEFAULT_CHECKS])
    ]
    require_onnx()
    segmentor = build_model(cfg, checkpoint)
    wrapper = ONNXSegmentor(segmentor).eval()
    try:  # the model must run at the traced size
        pytorch_logits(segmentor, random_images(1, h, w, 0))
    except (ValueError, RuntimeError) as e:
        raise ExportError(f'the model cannot run at --shape {h} {w}: ' +
                          ' '.join(str(e).split())[:300]) from e
    info = export_graph(wrapper, out, (h, w), opset, not static_batch, verbose)
    import onnx
    model = onnx.load(out, load_external_data=False)
    written = next((o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')), '?')
    if static_batch:
        checks = [(1, ch, cw) for _, ch, cw in checks]
    return ExportResult(
        out=out,
        seconds=info['seconds'],
        opset=written,
        shape=(h, w),
        min_size=info['min_size'],
        batch=1 if static_batch else 'batch',
        num_classes=segmentor.decode_head.num_classes,
        preprocessing=describe_preprocessing(wrapper),
        rtol=rtol,
        checks=check_onnx(out, segmentor, checks, rtol, min_size=info['min_size']))
