"""An exported graph run by onnxruntime against mmseg's own inference in PyTorch."""
from typing import List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from .onnx_graph import random_images, require_onnx


def pytorch_logits(segmentor: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """mmseg's own inference on raw images (``N x 3 x H x W``, 0-255): the data preprocessor,
    then ``predict``; the logits, ``N x K x H x W`` float32."""
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
    """onnxruntime vs PyTorch on raw random images of each ``(N, H, W)``.

    Args:
        path: the .onnx file.
        segmentor: the PyTorch model it was exported from.
        shapes: the ``(N, H, W)`` sizes to check.
        rtol: the largest allowed max |onnx - torch| / max |logit|.
        seed: the images' seed (``seed + i`` for the i-th size).
        min_size: sizes under it (what :func:`~.onnx_graph.export_graph` returns) are skipped.

    Returns:
        One dict per size: ``shape`` and either ``skipped`` (under ``min_size``, or the PyTorch
        model raises on it: the reason), ``error`` (onnxruntime failed; ``ok`` False) or
        ``out_shape``, ``max_abs``, ``max_logit``, ``rel`` (their ratio) and ``ok``.
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


def checks_passed(rows: List[dict]) -> bool:
    """At least one size was checked, and every checked size is ``ok``."""
    checked = [r for r in rows if 'skipped' not in r]
    return bool(checked) and all(r['ok'] for r in checked)


def format_checks(rows: List[dict], rtol: float) -> List[str]:
    """:func:`check_onnx`'s rows as the lines the export tool prints."""
    lines = [
        f'onnxruntime vs PyTorch (mmseg predict), raw random images; tolerance '
        f'{rtol:g} x max|logit|:'
    ]
    for r in rows:
        n, h, w = r['shape']
        name = f'{n}x3x{h}x{w}'
        if 'skipped' in r:
            lines.append(f'  {name:<14} skipped: {r["skipped"]}')
        elif 'error' in r:
            lines.append(f'  {name:<14} onnxruntime failed: {r["error"]}  FAIL')
        else:
            lines.append(f'  {name:<14} logits {"x".join(map(str, r["out_shape"]))}: max abs '
                         f'diff {r["max_abs"]:.3e}, max |logit| {r["max_logit"]:.3e}, relative '
                         f'{r["rel"]:.3e}  {"OK" if r["ok"] else "FAIL"}')
    return lines
