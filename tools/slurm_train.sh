#!/usr/bin/env bash
# Training on a Slurm cluster, as mmseg's tools/slurm_train.sh:
#   [GPUS=8] [GPUS_PER_NODE=8] bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py args]
# One task per GPU; CPUS_PER_TASK, SRUN_ARGS as in mmseg. On CPU-only nodes set GRES="" (no
# --gres request) and GPUS_PER_NODE to the tasks per node: the tasks then use gloo on the CPU.

set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
GRES=${GRES-"--gres=gpu:${GPUS_PER_NODE}"}
PY_ARGS=${@:4}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-python}

PYTHONPATH="${ROOT}":$PYTHONPATH \
srun -p ${PARTITION} \
    --job-name=${JOB_NAME} \
    ${GRES} \
    --ntasks=${GPUS} \
    --ntasks-per-node=${GPUS_PER_NODE} \
    --cpus-per-task=${CPUS_PER_TASK} \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    ${PYTHON} -u "${ROOT}/tools/train.py" ${CONFIG} --launcher="slurm" ${PY_ARGS}
