"""The torch 2.1 fallbacks (the README's CUDA install) of fcn_plugin.utils.torch_compat."""
import torch

from fcn_plugin.utils import torch_compat


def test_autocast_enabled_without_the_device_argument(monkeypatch):

    def old_is_autocast_enabled():  # torch < 2.4: CUDA only, no argument
        return False

    monkeypatch.setattr(torch, 'is_autocast_enabled', old_is_autocast_enabled)
    monkeypatch.setattr(torch, 'is_autocast_cpu_enabled', lambda: True, raising=False)
    assert torch_compat.autocast_enabled('cpu') is True
    assert torch_compat.autocast_enabled('cuda') is False


def test_is_compiling_without_torch_compiler_is_compiling(monkeypatch):
    from types import SimpleNamespace
    old_torch = SimpleNamespace(
        compiler=SimpleNamespace(),  # torch 2.1: no is_compiling
        _dynamo=SimpleNamespace(is_compiling=lambda: True))
    monkeypatch.setattr(torch_compat, 'torch', old_torch)
    assert torch_compat.is_compiling() is True


def test_current_torch():
    assert torch_compat.autocast_enabled('cpu') is False
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert torch_compat.autocast_enabled('cpu') is True
    assert torch_compat.sym_min(3, 5) == 3
