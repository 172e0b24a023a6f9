"""Re-execute a job under torchrun, one process per GPU (or per NPROC_PER_NODE), across NNODES nodes.

``build_launch_command`` is pure (argv, env, GPU count in; command and env out)
so every launch rule is unit-tested; ``run_launch`` runs it and forwards
``docker stop``'s SIGTERM to torchrun, which forwards it to the workers.
"""

import signal
import subprocess
import sys

from ftimg_jobs.errors import JobError
from ftimg_jobs.secrets import masked_command

BACKEND_ENV = "FTIMG_DIST_BACKEND"
SIGNAL_EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}


def env_int(env: dict, name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise JobError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise JobError(f"{name}={value} must be at least {minimum}")
    return value


def build_launch_command(argv: list, env: dict, gpu_count: int, python: str = sys.executable):
    """Return ``(cmd, env)`` that runs ``python -m ftimg_jobs *argv`` under torchrun, or None
    when this process should run the job itself (already launched, or one process in total).

    Environment: NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT, NPROC_PER_NODE
    (defaults to the GPU count, or 1 without GPUs). The workers find the
    torch.distributed backend in FTIMG_DIST_BACKEND: nccl with GPUs, gloo without.
    """
    if "LOCAL_RANK" in env:
        return None
    nnodes = env_int(env, "NNODES", 1, minimum=1)
    nproc = env_int(env, "NPROC_PER_NODE", max(gpu_count, 1), minimum=1)
    if nnodes * nproc == 1:
        return None
    cmd = [python, "-m", "torch.distributed.run", f"--nnodes={nnodes}", f"--nproc_per_node={nproc}"]
    if nnodes > 1:
        if not env.get("MASTER_ADDR"):
            raise JobError(f"NNODES={nnodes} needs MASTER_ADDR (the address of the node with NODE_RANK=0)")
        node_rank = env_int(env, "NODE_RANK", 0, minimum=0)
        if node_rank >= nnodes:
            raise JobError(f"NODE_RANK={node_rank} must be below NNODES={nnodes}")
        cmd += [f"--node_rank={node_rank}", f"--master_addr={env['MASTER_ADDR']}",
                f"--master_port={env_int(env, 'MASTER_PORT', 29500, minimum=1)}"]
    elif env.get("MASTER_PORT"):
        cmd += [f"--master_addr={env.get('MASTER_ADDR') or '127.0.0.1'}",
                f"--master_port={env_int(env, 'MASTER_PORT', 29500, minimum=1)}"]
    else:
        # A free port is picked for us, so two single-node jobs on one host do not collide.
        cmd += ["--standalone"]
    cmd += ["-m", "ftimg_jobs", *argv]
    launch_env = dict(env)
    launch_env.setdefault("OMP_NUM_THREADS", "1")
    # NCCL needs GPUs; jobs read this to pass the backend to torch.distributed.
    launch_env[BACKEND_ENV] = "nccl" if gpu_count > 0 else "gloo"
    return cmd, launch_env


def run_launch(cmd: list, env: dict) -> int:
    """Run the torchrun command; forward SIGTERM/SIGINT; return its exit code (143/130 when stopped)."""
    # The dispatcher has moved secret flags into the environment already; mask anyway, the echo may be shared.
    print("ftimg_jobs: launching " + masked_command(cmd), file=sys.stderr, flush=True)
    child = subprocess.Popen(cmd, env=env)
    received = []

    def forward(signum, _frame):
        received.append(signum)
        child.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in SIGNAL_EXIT_CODES}
    try:
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received and code != 0:
        return SIGNAL_EXIT_CODES[received[0]]
    return code
