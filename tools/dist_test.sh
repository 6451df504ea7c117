#!/usr/bin/env bash
# Distributed testing on torchrun, as mmseg's tools/dist_test.sh:
#   bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [tools/test.py args]
# Same variables as tools/dist_train.sh (NNODES, NODE_RANK, MASTER_ADDR, PORT, PYTHON).
set -e
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${PYTHON}" ]; then
  if [ -x "${ROOT}/.venv/bin/python" ]; then PYTHON="${ROOT}/.venv/bin/python"; else PYTHON=python; fi
fi
if [ -z "${CONFIG}" ] || [ -z "${CHECKPOINT}" ] || [ -z "${GPUS}" ]; then
  echo "usage: bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [tools/test.py args]" >&2
  exit 2
fi

# exec: this script's process becomes the launcher, so killing it ends the job (the workers
# get SIGTERM when their launcher dies; fcn_plugin/utils/launch.py)
PYTHONPATH="${ROOT}":$PYTHONPATH \
exec "${PYTHON}" -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    "${ROOT}/tools/test.py" \
    $CONFIG \
    $CHECKPOINT \
    --launcher pytorch \
    "${@:4}"
