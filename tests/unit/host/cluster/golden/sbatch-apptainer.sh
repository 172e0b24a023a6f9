#!/bin/bash
# Written by ftimg 0.1.0 (`ftimg sbatch`): qlora-sft on 2 node(s) x 4 GPU(s).
# Image /shared/images/train.sif, run by apptainer.
# Outputs: /shared/out/qlora (on the shared filesystem, the same path on every node).
# Logs: /shared/logs/ftimg-qlora-sft-JOBID.out (this script), ftimg-qlora-sft-JOBID-NODE.log (one per node).
# Submit again with `sbatch THIS_FILE`.
#SBATCH --job-name=ftimg-qlora-sft
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=4
#SBATCH --time=12:00:00
#SBATCH --requeue
#SBATCH --signal=B:USR1@600
#SBATCH --output=/shared/logs/%x-%j.out
#SBATCH --open-mode=append
set -uo pipefail

# The job's output directories: `ftimg sbatch` made them when it could; a script submitted from
# elsewhere makes them here, as the job's user, before any node mounts them.
mkdir -p /shared/out/qlora /shared/hf

# The rendezvous of the image's launcher (the contract `ftimg compose` fills too): the first node of
# the allocation is the master; each node's NODE_RANK is its SLURM_NODEID, set in the step.
export NNODES="$SLURM_NNODES" MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)" MASTER_PORT="29500" NPROC_PER_NODE="4"
export NCCL_SOCKET_IFNAME="${NCCL_SOCKET_IFNAME:-^lo,docker0}" NCCL_DEBUG="${NCCL_DEBUG:-WARN}" NCCL_IB_DISABLE="${NCCL_IB_DISABLE:-0}"
echo "ftimg: job $SLURM_JOB_ID, attempt $((${SLURM_RESTART_COUNT:-0} + 1)), nodes $SLURM_JOB_NODELIST, master $MASTER_ADDR:$MASTER_PORT"

# 600 s before the time limit Slurm sends USR1 to this script: the step is told to stop
# (SIGTERM: the job saves a checkpoint and exits 143), then the job is requeued and resumes from that checkpoint
# (--resume_from_checkpoint auto). A preemption, a failed node or `scontrol requeue` sends SIGTERM
# to the step itself and requeues the job; this script only waits for the checkpoint.
time_limit_near=0
on_time_limit() {
    echo "ftimg: time limit near: stopping the step at a checkpoint"
    time_limit_near=1
    scancel --signal=TERM "$SLURM_JOB_ID"
}
trap on_time_limit USR1
trap 'echo "ftimg: SIGTERM: waiting for the step to save a checkpoint"' TERM

# apptainer runs each node's task in the image. The task gets this script's environment: the image's
# own variables are set again in the command so that they win, and torchrun's worker variables are
# removed.
# One task per node with every CPU Slurm gave the job there; its output goes to one log per node. A step
# that cannot start within 120 s fails instead of waiting for a node forever.
srun --ntasks-per-node=1 --cpus-per-task="$SLURM_CPUS_ON_NODE" --kill-on-bad-exit=1 --immediate=120 --gpus-per-node=4 \
    --output=/shared/logs/%x-%j-%N.log --open-mode=append \
    apptainer exec --nv --pwd /tmp \
    --bind /shared/data/train.jsonl:/mnt/host/shared/data/train.jsonl:ro \
    --bind /shared/out/qlora:/mnt/host/shared/out/qlora \
    --bind /shared/hf:/mnt/hf-cache \
    /shared/images/train.sif \
    bash -c 'exec env -u RANK -u LOCAL_RANK -u WORLD_SIZE -u LOCAL_WORLD_SIZE -u GROUP_RANK NODE_RANK="$SLURM_NODEID" "$@"' ftimg-node \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    FTIMG_PROFILE=cu121-torch2.1 \
    FTIMG_DEFAULT_MODEL=/opt/ftimg/models/tiny-llama \
    PYTHONPATH=/opt/ftimg/entrypoints \
    HF_HOME=/mnt/hf-cache \
    python -m ftimg_jobs qlora-sft --data_path /mnt/host/shared/data/train.jsonl --max_steps 1000 --output_dir /mnt/host/shared/out/qlora &
step=$!
# `wait` returns early when a trapped signal arrives: wait again until the step has ended.
wait "$step"; code=$?
while kill -0 "$step" 2>/dev/null; do wait "$step"; code=$?; done
echo "ftimg: step ended with exit code $code"
if [ "$time_limit_near" = 1 ] && [ "$code" != 0 ]; then
    echo "ftimg: requeueing job $SLURM_JOB_ID: it resumes from its last checkpoint"
    scontrol requeue "$SLURM_JOB_ID"
fi
exit "$code"
