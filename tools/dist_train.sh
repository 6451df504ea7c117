#!/usr/bin/env bash
# Distributed training on torchrun (PyTorch DDP), as mmseg's tools/dist_train.sh:
#   bash tools/dist_train.sh CONFIG NPROC [tools/train.py args]
# NPROC processes per node (one per GPU; on a CPU-only machine, processes on the CPU with gloo).
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as in mmseg. PYTHON picks the interpreter
# (default: the repo's .venv if there is one, else `python`).
set -e
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${PYTHON}" ]; then
  if [ -x "${ROOT}/.venv/bin/python" ]; then PYTHON="${ROOT}/.venv/bin/python"; else PYTHON=python; fi
fi
if [ -z "${CONFIG}" ] || [ -z "${GPUS}" ]; then
  echo "usage: bash tools/dist_train.sh CONFIG NPROC [tools/train.py args]" >&2
  exit 2
fi

# torchrun passes these signals on to the workers, which stop after their iteration with a
# checkpoint (fcn_plugin/runtime/preemption.py); SIGUSR1 (Slurm's --signal) is not in its default
export TORCHELASTIC_SIGNALS_TO_HANDLE=${TORCHELASTIC_SIGNALS_TO_HANDLE:-SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1}
# exec: this script's process becomes the launcher, so killing it ends the job (the workers
# get SIGTERM when their launcher dies; fcn_plugin/utils/launch.py)
PYTHONPATH="${ROOT}":$PYTHONPATH \
exec "${PYTHON}" -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    "${ROOT}/tools/train.py" \
    $CONFIG \
    --launcher pytorch "${@:3}"
