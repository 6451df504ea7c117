"""The few torch calls whose signature changed between torch 2.1 (what mmcv 2.1.0 has CUDA
wheels for, README) and the pinned CPU torch 2.13."""
import torch


def is_compiling() -> bool:
    """Inside torch.compile / torch.export (ONNX export)."""
    compiler = getattr(torch, 'compiler', None)
    if compiler is not None and hasattr(compiler, 'is_compiling'):
        return compiler.is_compiling()
    dynamo = getattr(torch, '_dynamo', None)
    return bool(dynamo is not None and dynamo.is_compiling())


def autocast_enabled(device_type: str) -> bool:
    """``torch.is_autocast_enabled(device_type)`` (torch >= 2.4); older: per-device calls."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:
        if device_type == 'cpu':
            return torch.is_autocast_cpu_enabled()
        return torch.is_autocast_enabled()  # CUDA


sym_min = getattr(torch, 'sym_min', min)
