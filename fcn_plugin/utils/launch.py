"""Launcher set-up that lets one config run on a CPU laptop and on a GPU cluster unchanged.

mmengine 0.10.7 assumes GPUs once a job is distributed:

* its ``pytorch`` and ``slurm`` launchers call ``torch.cuda.set_device`` before
  ``init_process_group``, which raises without CUDA;
* mmseg's default runtime asks for the ``nccl`` backend, which only exists on GPUs;
* ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to DistributedDataParallel, which
  PyTorch rejects for a CPU module.

:func:`prepare_distributed` fixes all three before the Runner is built: it picks the backend
(``nccl`` with CUDA, ``gloo`` without), writes it into ``cfg.env_cfg.dist_cfg``, and on a
machine without CUDA initialises the process group itself (``Runner.setup_env`` only calls
``init_dist`` when ``torch.distributed`` is not initialised yet) and wraps the model without
``device_ids``. With CUDA, mmengine's own launchers run as usual, with ``nccl``.

It also makes a distributed job end when one of its processes cannot go on:

* collectives time out after ``env_cfg.dist_cfg.timeout`` seconds (:data:`DEFAULT_TIMEOUT_S`
  when the config sets none, instead of torch's 30 minutes), so a frozen rank makes the others
  fail instead of waiting;
* with ``nccl``, asynchronous error handling is on (``TORCH_NCCL_ASYNC_ERROR_HANDLING=1``, what
  torchrun sets; an explicit value in the environment is kept): a timed-out collective ends the
  process instead of only being reported;
* under torchrun, each worker asks the kernel for SIGTERM when its launcher dies
  (:func:`exit_with_launcher`): torchrun starts workers in their own sessions, so a killed
  launcher would otherwise leave them training on as orphans.
"""
import ctypes
import datetime
import logging
import os
import signal
import subprocess
import sys
from typing import Optional

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import MODEL_WRAPPERS
from torch.nn.parallel import DistributedDataParallel

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')
# seconds a collective may wait for the other ranks (torch's default is 1800)
DEFAULT_TIMEOUT_S = 600
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def default_backend(cuda_available: Optional[bool] = None) -> str:
    """``'nccl'`` when CUDA (and NCCL) can be used, ``'gloo'`` otherwise."""
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if cuda_available and dist.is_available() and dist.is_nccl_available():
        return 'nccl'
    return 'gloo'


def select_backend(requested: Optional[str], cuda_available: Optional[bool] = None) -> str:
    """The backend to use given the config's ``env_cfg.dist_cfg.backend``.

    Without CUDA only ``gloo`` (or ``mpi``, if the user built torch with it) can work, so a
    requested ``nccl`` becomes ``gloo``. With CUDA the config's choice is kept; none means
    ``nccl``.
    """
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    auto = default_backend(cuda_available)
    if requested is None:
        return auto
    if not cuda_available and requested == 'nccl':
        return auto
    return requested


def _slurm_env() -> None:
    """Fill the torch.distributed env variables from Slurm's (as mmengine's slurm launcher)."""
    proc_id = int(os.environ['SLURM_PROCID'])
    ntasks = int(os.environ['SLURM_NTASKS'])
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        node_list = os.environ['SLURM_NODELIST']
        os.environ['MASTER_ADDR'] = subprocess.getoutput(
            f'scontrol show hostname {node_list} | head -n1')
    os.environ['WORLD_SIZE'] = str(ntasks)
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    os.environ['RANK'] = str(proc_id)


def init_cpu_process_group(launcher: str, backend: str = 'gloo', timeout=None) -> None:
    """Initialise torch.distributed without touching CUDA (env:// rendezvous).

    ``pytorch``: torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT. ``slurm``: they
    are derived from SLURM_* as mmengine does. ``timeout`` is in seconds, as in ``dist_cfg``.
    """
    if dist.is_initialized():
        return
    if launcher == 'slurm':
        _slurm_env()
    elif launcher != 'pytorch':
        raise ValueError(f'init_cpu_process_group: launcher {launcher!r} is not supported on '
                         "CPU; use 'pytorch' (torchrun, tools/dist_train.sh) or 'slurm'")
    missing = [
        k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT') if k not in os.environ
    ]
    if missing:
        raise RuntimeError(f'--launcher {launcher}: environment variables {missing} are not set; '
                           'start the job with torchrun (tools/dist_train.sh, '
                           'tools/dist_test.sh) or srun (tools/slurm_train.sh)')
    kwargs = {}
    if timeout is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    dist.init_process_group(
        backend=backend,
        init_method='env://',
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        **kwargs)


def check_timeout(timeout) -> float:
    """``env_cfg.dist_cfg.timeout`` (seconds) validated: a positive number."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError('env_cfg.dist_cfg.timeout must be a positive number of seconds '
                         f'(e.g. --cfg-options env_cfg.dist_cfg.timeout=600), got {timeout!r}')
    return timeout


def exit_with_launcher(sig: int = signal.SIGTERM) -> bool:
    """Have the kernel send ``sig`` to this process when its parent (the torchrun agent) dies.

    Linux only (``prctl(PR_SET_PDEATHSIG)``); returns whether it is armed. If the parent died
    before the call (the process already belongs to init), ``sig`` is sent at once; a
    subreaper adopting it instead goes unnoticed (a window of a few seconds at start-up).
    """
    if not sys.platform.startswith('linux'):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() == 1:
        os.kill(os.getpid(), sig)
    return True


def _nccl_error_handling() -> None:
    """Turn on NCCL's asynchronous error handling unless the environment chose a mode."""
    mode = os.environ.setdefault('TORCH_NCCL_ASYNC_ERROR_HANDLING', '1')
    if mode == '0':
        print_log(
            'TORCH_NCCL_ASYNC_ERROR_HANDLING=0: a timed-out NCCL collective will not end '
            'the process; unset it to let a stuck job fail.',
            logger='current',
            level=logging.WARNING)


def _cpu_model_wrapper_cfg(cfg: Config) -> dict:
    """DDP wrapper config without ``device_ids`` (PyTorch refuses them for CPU modules)."""
    wrapper = cfg.get('model_wrapper_cfg', None)
    if wrapper is None:
        wrapper = dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper = dict(wrapper)
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper_type = MODEL_WRAPPERS.get(wrapper['type'])
    if isinstance(wrapper_type, type) and issubclass(wrapper_type, DistributedDataParallel):
        # Explicit None wins over the Runner's default_args device_ids=[LOCAL_RANK].
        wrapper['device_ids'] = None
        wrapper.pop('output_device', None)
    return wrapper


def prepare_distributed(cfg: Config, launcher: str) -> Config:
    """Set ``cfg.launcher``, make the job start on whatever devices this machine has, and
    make it end when a rank cannot go on (timeout, NCCL error handling, launcher death).

    Call before ``Runner.from_cfg(cfg)``. Returns ``cfg`` (modified in place).
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f'launcher must be one of {LAUNCHERS}, got {launcher!r}')
    cfg.launcher = launcher
    if launcher == 'none':
        return cfg
    cuda = torch.cuda.is_available()
    env_cfg = cfg.get('env_cfg', None) or dict()
    dist_cfg = dict(env_cfg.get('dist_cfg', None) or dict())
    requested = dist_cfg.get('backend')
    backend = select_backend(requested, cuda)
    if requested is not None and requested != backend:
        print_log(
            f'No CUDA on this machine: torch.distributed backend {requested!r} from '
            f'env_cfg.dist_cfg replaced by {backend!r}.',
            logger='current')
    dist_cfg['backend'] = backend
    timeout = dist_cfg.get('timeout')  # None: not set
    dist_cfg['timeout'] = check_timeout(DEFAULT_TIMEOUT_S if timeout is None else timeout)
    env_cfg = dict(env_cfg)
    env_cfg['dist_cfg'] = dist_cfg
    cfg.env_cfg = env_cfg
    if launcher == 'pytorch' and 'TORCHELASTIC_RUN_ID' in os.environ:
        exit_with_launcher()  # started by torchrun: end with it
    if backend == 'nccl':
        _nccl_error_handling()
    if not cuda:
        if launcher == 'mpi':
            raise RuntimeError('--launcher mpi needs CUDA in mmengine 0.10.7; on CPU use '
                               '--launcher pytorch (tools/dist_train.sh) or slurm')
        init_cpu_process_group(launcher, backend, dist_cfg.get('timeout'))
        cfg.model_wrapper_cfg = _cpu_model_wrapper_cfg(cfg)
    return cfg


def add_runner_args(parser) -> None:
    """The arguments mmseg's ``tools/train.py`` and ``tools/test.py`` share: ``--cfg-options``,
    ``--launcher`` and ``--local-rank`` (``torch.distributed.launch`` passes it; torchrun sets
    ``LOCAL_RANK``). Parse with :func:`parse_runner_args`."""
    from mmengine.config import DictAction
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config: key=value pairs (nested keys with dots; lists '
        'as key="[a,b]" or key=a,b; tuples as key="[(a,b),(c,d)]"; quotes needed, no spaces)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_runner_args(parser, argv=None):
    """``parser.parse_args(argv)``, with ``LOCAL_RANK`` exported for code that reads the
    environment (as mmseg's tools do)."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args
