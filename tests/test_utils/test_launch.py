"""fcn_plugin.utils.launch: one config, CPU (gloo) or GPUs (nccl), chosen automatically; a job
that ends when a rank cannot go on (tests/test_tools/test_dist_faults.py runs whole jobs)."""
import datetime
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config

from fcn_plugin.utils import launch
from fcn_plugin.utils.launch import (DEFAULT_TIMEOUT_S, check_timeout, default_backend,
                                     init_cpu_process_group, prepare_distributed, select_backend)


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
    for key, value in dict(
            RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
            MASTER_PORT=str(port)).items():
        monkeypatch.setenv(key, value)
    # started by torchrun: the worker arms its parent-death signal (not in pytest itself here)
    monkeypatch.setenv('TORCHELASTIC_RUN_ID', 'test')
    armed = []
    monkeypatch.setattr(launch, 'exit_with_launcher', lambda: armed.append(True))
    init_kwargs = []
    init = dist.init_process_group

    def spy(*args, **kwargs):
        init_kwargs.append(kwargs)
        return init(*args, **kwargs)

    monkeypatch.setattr(dist, 'init_process_group', spy)
    cfg = Config(
        dict(
            env_cfg=dict(cudnn_benchmark=True, dist_cfg=dict(backend='nccl')),
            find_unused_parameters=True))
    try:
        prepare_distributed(cfg, 'pytorch')
        assert dist.is_initialized() and dist.get_backend() == 'gloo'
        assert cfg.launcher == 'pytorch'
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        # no timeout in the config: 10 minutes, not torch's 30
        assert cfg.env_cfg.dist_cfg.timeout == DEFAULT_TIMEOUT_S <= 600
        assert init_kwargs[0]['timeout'] == datetime.timedelta(seconds=DEFAULT_TIMEOUT_S)
        assert armed == [True]
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


def test_timeout_from_config_and_checked(monkeypatch):
    assert check_timeout(60) == 60 and check_timeout(0.5) == 0.5
    for bad in (0, -1, '600', None, True):
        with pytest.raises(ValueError, match='env_cfg.dist_cfg.timeout'):
            check_timeout(bad)
    monkeypatch.delenv('TORCHELASTIC_RUN_ID', raising=False)
    inits = []
    monkeypatch.setattr(launch, 'init_cpu_process_group', lambda *args: inits.append(args))
    for cuda in (False, True):
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)
        # an explicit value is kept: the CPU path passes it on, with CUDA mmengine's init_dist
        # reads it from the config
        cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='gloo', timeout=42))))
        prepare_distributed(cfg, 'pytorch')
        assert cfg.env_cfg.dist_cfg.timeout == 42
        cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='gloo'))))
        prepare_distributed(cfg, 'slurm')
        assert cfg.env_cfg.dist_cfg.timeout == DEFAULT_TIMEOUT_S
        with pytest.raises(ValueError, match='env_cfg.dist_cfg.timeout'):
            prepare_distributed(Config(dict(env_cfg=dict(dist_cfg=dict(timeout='10m')))), 'pytorch')
    assert inits == [('pytorch', 'gloo', 42), ('slurm', 'gloo', DEFAULT_TIMEOUT_S)]


def test_nccl_async_error_handling(monkeypatch):
    monkeypatch.delenv('TORCH_NCCL_ASYNC_ERROR_HANDLING', raising=False)
    launch._nccl_error_handling()
    assert os.environ['TORCH_NCCL_ASYNC_ERROR_HANDLING'] == '1'
    monkeypatch.setenv('TORCH_NCCL_ASYNC_ERROR_HANDLING', '3')  # the user's choice is kept
    launch._nccl_error_handling()
    assert os.environ['TORCH_NCCL_ASYNC_ERROR_HANDLING'] == '3'


def _alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] not in 'ZX'
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='prctl and /proc are Linux')
def test_worker_ends_with_its_launcher(tmp_path):
    """A process that called exit_with_launcher gets SIGTERM when its parent is SIGKILLed."""
    launch_py = launch.__file__
    worker = textwrap.dedent(f'''
        import importlib.util, sys, time
        spec = importlib.util.spec_from_file_location('launch', {launch_py!r})
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        assert mod.exit_with_launcher()
        print('armed', flush=True)
        time.sleep(120)
    ''')
    parent = textwrap.dedent(f'''
        import subprocess, sys, time
        p = subprocess.Popen([sys.executable, '-c', {worker!r}], stdout=subprocess.PIPE,
                             text=True, start_new_session=True)  # as torchrun starts workers
        assert p.stdout.readline().strip() == 'armed'
        print(p.pid, flush=True)
        time.sleep(120)
    ''')
    proc = subprocess.Popen([sys.executable, '-c', parent], stdout=subprocess.PIPE, text=True)
    pid = None
    try:
        pid = int(proc.stdout.readline())
        assert _alive(pid)
        proc.kill()
        proc.wait()
        end = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < end:
            time.sleep(0.1)
        assert not _alive(pid), 'the worker outlived its launcher'
    finally:
        if proc.poll() is None:
            proc.kill()
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)
