"""fcn_plugin.utils.launch: one config, CPU (gloo) or GPUs (nccl), chosen automatically."""
import socket

import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config

from fcn_plugin.utils.launch import (default_backend, init_cpu_process_group,
                                     prepare_distributed, select_backend)


def test_select_backend():
    assert select_backend(None, cuda_available=False) == 'gloo'
    assert select_backend('nccl', cuda_available=False) == 'gloo'  # mmseg's default runtime
    assert select_backend('gloo', cuda_available=False) == 'gloo'
    assert select_backend('gloo', cuda_available=True) == 'gloo'  # explicit choice kept
    assert default_backend(cuda_available=False) == 'gloo'
    if dist.is_nccl_available():
        assert select_backend(None, cuda_available=True) == 'nccl'
        assert select_backend('nccl', cuda_available=True) == 'nccl'


def test_prepare_none_launcher_leaves_config():
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    prepare_distributed(cfg, 'none')
    assert cfg.launcher == 'none'
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert 'model_wrapper_cfg' not in cfg
    with pytest.raises(ValueError, match='launcher'):
        prepare_distributed(cfg, 'torchrun')


def test_missing_env_is_explained(monkeypatch):
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    if dist.is_initialized():
        pytest.skip('a process group is already initialised')
    with pytest.raises(RuntimeError, match='torchrun'):
        init_cpu_process_group('pytorch')


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU path (no CUDA) is tested here')
def test_pytorch_launcher_on_cpu(monkeypatch):
    """mmengine's pytorch launcher would call torch.cuda.set_device and fail; we init gloo,
    and the DDP wrapper gets no device_ids (PyTorch rejects them for CPU modules)."""
    if dist.is_initialized():
        pytest.skip('a process group is already initialised')
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    for key, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                           MASTER_PORT=str(port)).items():
        monkeypatch.setenv(key, value)
    cfg = Config(dict(env_cfg=dict(cudnn_benchmark=True, dist_cfg=dict(backend='nccl')),
                      find_unused_parameters=True))
    try:
        prepare_distributed(cfg, 'pytorch')
        assert dist.is_initialized() and dist.get_backend() == 'gloo'
        assert cfg.launcher == 'pytorch'
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        assert cfg.env_cfg.cudnn_benchmark is True
        wrapper = cfg.model_wrapper_cfg
        assert wrapper['type'] == 'MMDistributedDataParallel'
        assert wrapper['device_ids'] is None
        assert wrapper['find_unused_parameters'] is True
        # the wrapper config builds on a CPU module
        from mmengine.registry import MODEL_WRAPPERS
        ddp = MODEL_WRAPPERS.build(dict(wrapper, module=torch.nn.Linear(2, 2)))
        assert ddp(torch.ones(1, 2)).shape == (1, 2)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
