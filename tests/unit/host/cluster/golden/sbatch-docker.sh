#!/bin/bash
# Written by ftimg 0.1.0 (`ftimg sbatch`): qlora-sft on 2 node(s) x 8 GPU(s).
# Image registry.example.com/team/train:cu121-torch2.1, run by each node's Docker engine.
# Outputs: /shared/out/qlora (on the shared filesystem, the same path on every node).
# Logs: /shared/logs/ftimg-qlora-sft-JOBID.out (this script), ftimg-qlora-sft-JOBID-NODE.log (one per node).
# Submit again with `sbatch THIS_FILE`.
#SBATCH --job-name=ftimg-qlora-sft
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --partition=gpu
#SBATCH --no-requeue
#SBATCH --signal=B:USR1@300
#SBATCH --output=/shared/logs/%x-%j.out
#SBATCH --open-mode=append
set -uo pipefail

# The job's output directories: `ftimg sbatch` made them when it could; a script submitted from
# elsewhere makes them here, as the job's user, before any node mounts them.
mkdir -p /shared/out/qlora /shared/hf

# The rendezvous of the image's launcher (the contract `ftimg compose` fills too): the first node of
# the allocation is the master; each node's NODE_RANK is its SLURM_NODEID, set in the step.
export NNODES="$SLURM_NNODES" MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)" MASTER_PORT="29500" NPROC_PER_NODE="8"
export NCCL_SOCKET_IFNAME="${NCCL_SOCKET_IFNAME:-^lo,docker0}" NCCL_DEBUG="${NCCL_DEBUG:-WARN}" NCCL_IB_DISABLE="${NCCL_IB_DISABLE:-0}"
echo "ftimg: job $SLURM_JOB_ID, attempt $((${SLURM_RESTART_COUNT:-0} + 1)), nodes $SLURM_JOB_NODELIST, master $MASTER_ADDR:$MASTER_PORT"

# 300 s before the time limit Slurm sends USR1 to this script: the step is told to stop
# (SIGTERM: the job saves a checkpoint and exits 143), then submit this script again to resume from that checkpoint
# (--resume_from_checkpoint auto). A preemption or scancel sends SIGTERM to the step itself;
# this script only waits for the checkpoint.
time_limit_near=0
on_time_limit() {
    echo "ftimg: time limit near: stopping the step at a checkpoint"
    time_limit_near=1
    scancel --signal=TERM "$SLURM_JOB_ID"
}
trap on_time_limit USR1
trap 'echo "ftimg: SIGTERM: waiting for the step to save a checkpoint"' TERM

# What srun starts on each node: the image on the node's Docker engine, with the settings `ftimg run`
# gives a container. A container left by an earlier attempt of this job (a requeued job keeps its id)
# is removed first; a missing image is pulled, within a time limit.
ftimg_node() {
    local name="ftimg-qlora-sft-$SLURM_JOB_ID-$SLURMD_NODENAME"
    timeout 60 docker rm --force "$name" >/dev/null 2>&1 || true
    if ! docker image inspect registry.example.com/team/train:cu121-torch2.1 >/dev/null 2>&1; then
        timeout 1800 docker pull registry.example.com/team/train:cu121-torch2.1 || return 1
    fi
    export NODE_RANK="$SLURM_NODEID"
    # Secrets go to the container as read-only files, never in its configuration (`docker inspect`).
    local secrets_parent=/dev/shm
    if [ -n "${XDG_RUNTIME_DIR:-}" ] && [ -d "$XDG_RUNTIME_DIR" ] && [ -w "$XDG_RUNTIME_DIR" ]; then
        secrets_parent="$XDG_RUNTIME_DIR"
    fi
    local secrets
    secrets="$(mktemp -d "$secrets_parent/ftimg-secrets.XXXXXX")" || return 1
    ( umask 0333 && printf '%s' "${HF_TOKEN:?not set on this node: export it where you submit (sbatch passes your environment to the job)}" > "$secrets/HF_TOKEN" ) || { rm -rf "$secrets"; return 1; }
    # $$ becomes the docker command below (exec): wait for its container to run, or for it to end.
    ( while kill -0 $$ 2>/dev/null && [ "$(docker inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" != true ]; do sleep 1; done; rm -rf "$secrets" ) &
    exec docker run --rm --name "$name" \
        --init --user 1234:1234 --shm-size 16g --ulimit memlock=-1:-1 --ulimit stack=67108864:67108864 \
        --network host \
        --gpus "\"device=${SLURM_STEP_GPUS:-$SLURM_JOB_GPUS}\"" \
        --env SLURM_JOB_ID --env SLURMD_NODENAME \
        --env NNODES --env NODE_RANK --env MASTER_ADDR --env MASTER_PORT --env NPROC_PER_NODE \
        --env NCCL_SOCKET_IFNAME --env NCCL_DEBUG --env NCCL_IB_DISABLE \
        --env WANDB_PROJECT \
        --env HF_HOME=/mnt/hf-cache \
        --volume /shared/data/train.jsonl:/mnt/host/shared/data/train.jsonl:ro \
        --volume /shared/out/qlora:/mnt/host/shared/out/qlora \
        --volume /shared/hf:/mnt/hf-cache \
        --mount "type=bind,source=$secrets/HF_TOKEN,target=/run/secrets/HF_TOKEN,readonly" \
        --label org.ftimg.run.image=registry.example.com/team/train:cu121-torch2.1 --label org.ftimg.run.job=qlora-sft --label org.ftimg.run.output=/shared/out/qlora \
        registry.example.com/team/train:cu121-torch2.1 qlora-sft --data_path /mnt/host/shared/data/train.jsonl --max_steps 1000 --output_dir /mnt/host/shared/out/qlora
}
export -f ftimg_node

# One task per node with every CPU Slurm gave the job there; its output goes to one log per node. A step
# that cannot start within 120 s fails instead of waiting for a node forever.
srun --ntasks-per-node=1 --cpus-per-task="$SLURM_CPUS_ON_NODE" --kill-on-bad-exit=1 --immediate=120 --gpus-per-node=8 \
    --output=/shared/logs/%x-%j-%N.log --open-mode=append \
    bash -c ftimg_node &
step=$!
# `wait` returns early when a trapped signal arrives: wait again until the step has ended.
wait "$step"; code=$?
while kill -0 "$step" 2>/dev/null; do wait "$step"; code=$?; done
echo "ftimg: step ended with exit code $code"
exit "$code"
