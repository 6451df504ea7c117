#!/usr/bin/env bash
# Training on a Slurm cluster, as mmseg's tools/slurm_train.sh:
#   [GPUS=8] [GPUS_PER_NODE=8] bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py args]
# One task per GPU; CPUS_PER_TASK, SRUN_ARGS as in mmseg. On CPU-only nodes set GRES="" (no
# --gres request) and GPUS_PER_NODE to the tasks per node: the tasks then use gloo on the CPU.
#
# Preemption and requeue (docs/training.md): also a batch script,
#   sbatch --signal=B:USR1@120 --requeue [resources] tools/slurm_train.sh PARTITION JOB CONFIG
# SIGUSR1, SIGTERM or SIGINT sent to this script is passed to the tasks as SIGUSR1 (srun passes
# USR1 on as it is; SIGTERM would make srun kill its tasks at once): they finish the current
# iteration, save a checkpoint and exit non-zero. After SIGUSR1 (the time limit's warning, or
# a task stopped by it) the job requeues itself (scontrol requeue; REQUEUE=0: never), and a
# requeued run (SLURM_RESTART_COUNT > 0) or RESUME=1 adds --resume.

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
# sbatch runs a copy of this script from its spool folder: the repository is where it was submitted
if [ ! -f "${ROOT}/tools/train.py" ] && [ -n "${SLURM_SUBMIT_DIR}" ]; then ROOT="${SLURM_SUBMIT_DIR}"; fi
PYTHON=${PYTHON:-python}
REQUEUE=${REQUEUE:-1}
PARTITION_ARG="-p ${PARTITION}"
if [ -n "${SLURM_JOB_ID}" ]; then PARTITION_ARG=""; fi  # a step of this job: its partition
if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ] || [ "${RESUME:-0}" = 1 ]; then
  PY_ARGS="${PY_ARGS} --resume"  # safe on an empty work dir: it then starts at iteration 0
fi

STOP=""
forward() {  # srun passes SIGUSR1 on to the tasks as it is
  STOP=${STOP:-$1}
  INTERRUPTED=1
  kill -USR1 "${SRUN_PID}" 2>/dev/null
}
trap 'forward USR1' USR1
trap 'forward TERM' TERM
trap 'forward INT' INT

# in the background, so that this shell handles the signals while the tasks run
PYTHONPATH="${ROOT}":$PYTHONPATH \
srun ${PARTITION_ARG} \
    --job-name=${JOB_NAME} \
    ${GRES} \
    --ntasks=${GPUS} \
    --ntasks-per-node=${GPUS_PER_NODE} \
    --cpus-per-task=${CPUS_PER_TASK} \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    ${PYTHON} -u "${ROOT}/tools/train.py" ${CONFIG} --launcher="slurm" ${PY_ARGS} &
SRUN_PID=$!

# wait returns early (> 128) when a signal is trapped: wait again until srun itself ends
STATUS=0
while :; do
  INTERRUPTED=0
  wait "${SRUN_PID}"
  CODE=$?
  if [ "${CODE}" -ne 127 ]; then STATUS=${CODE}; fi
  if [ "${INTERRUPTED}" = 0 ] || [ "${CODE}" -eq 127 ]; then break; fi
done

# requeue after SIGUSR1 here, or tasks that stopped on their own SIGUSR1 (128 + 10: Slurm's
# --signal=USR1@T without B: signals the tasks); not after SIGTERM/SIGINT here (a stop)
if [ "${REQUEUE}" = 1 ] && [ -n "${SLURM_JOB_ID}" ] \
    && { [ "${STOP}" = USR1 ] || { [ -z "${STOP}" ] && [ "${STATUS}" -eq 138 ]; }; }; then
  scontrol requeue "${SLURM_JOB_ID}"
fi
exit "${STATUS}"
