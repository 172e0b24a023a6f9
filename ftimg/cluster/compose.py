"""`ftimg compose`: a docker compose file for one job on N nodes with M GPUs each. Pure.

One service per node (`node0` … `nodeN-1`), each the same RunSpec `ftimg run` would
create, plus the torchrun rendezvous settings the image's launcher reads (NNODES,
NODE_RANK, MASTER_ADDR, MASTER_PORT, NPROC_PER_NODE). On one host the services
find node0 by name on the compose network; across hosts (`master_addr` given) they
use the host network and each host starts its own service. The file is accepted by
docker-compose v1 (1.27+) and compose v2: no `version:` key, long-form volumes.
"""

from __future__ import annotations

import yaml

from ftimg.errors import FtimgError
from ftimg.job.runspec import RunSpec

DEFAULT_MASTER_PORT = 29500
# Overridable when `docker compose up` runs: `NCCL_SOCKET_IFNAME=ib0 docker compose up`.
NCCL_SETTINGS = {
    "NCCL_SOCKET_IFNAME": "${NCCL_SOCKET_IFNAME:-^lo,docker0}",
    "NCCL_DEBUG": "${NCCL_DEBUG:-WARN}",
    "NCCL_IB_DISABLE": "${NCCL_IB_DISABLE:-0}",
}


def size_text(nbytes: int) -> str:
    """A byte count as docker and compose write it: 16g, 512m, or bytes."""
    for unit, shift in (("g", 30), ("m", 20), ("k", 10)):
        if nbytes % (1 << shift) == 0:
            return f"{nbytes >> shift}{unit}"
    return f"{nbytes}b"


def _escape(value: str) -> str:
    """Compose substitutes ${VAR} in every value; a literal `$` is written `$$`."""
    return value.replace("$", "$$")


def rendezvous_environment(nnodes, node_rank, master_addr, master_port, nproc_per_node) -> dict[str, str]:
    """The variables the image's launcher meets on (entrypoints' launch.py); every multi-node path fills them.

    Values are strings: numbers here, shell expressions in a Slurm batch script.
    """
    return {"NNODES": str(nnodes), "NODE_RANK": str(node_rank), "MASTER_ADDR": str(master_addr),
            "MASTER_PORT": str(master_port), "NPROC_PER_NODE": str(nproc_per_node)}


def node_service(spec: RunSpec, rank: int, nodes: int, gpus_per_node: int, master_addr: str | None,
                 master_port: int, passed_env: list[str]) -> dict:
    environment = {name: _escape(value) for name, value in sorted(spec.environment.items())
                   if name not in passed_env}
    environment.update(NCCL_SETTINGS)
    environment.update(rendezvous_environment(nodes, rank, master_addr or "node0", master_port,
                                              max(gpus_per_node, 1)))
    service: dict = {
        "image": spec.image,
        "command": [_escape(token) for token in spec.command],
        "user": spec.user,
        "init": True,
        "environment": [f"{name}={value}" for name, value in environment.items()] + sorted(passed_env),
        "ulimits": {name: ({"soft": soft, "hard": hard} if soft != hard else soft)
                    for name, (soft, hard) in sorted(spec.ulimits.items())},
        "volumes": [{"type": "bind", "source": m.source, "target": m.target, "read_only": m.read_only}
                    for m in spec.mounts],
        "labels": dict(spec.labels),
        "stop_grace_period": f"{spec.stop_timeout}s",
    }
    if spec.ipc_mode:
        service["ipc"] = spec.ipc_mode
    if spec.shm_size:
        service["shm_size"] = size_text(spec.shm_size)
    if master_addr:
        service["network_mode"] = "host"
    else:
        service["hostname"] = f"node{rank}"
    if gpus_per_node > 0:
        service["deploy"] = {"resources": {"reservations": {"devices": [
            {"driver": "nvidia", "count": gpus_per_node, "capabilities": ["gpu"]}]}}}
    return service


def compose_model(spec: RunSpec, nodes: int, gpus_per_node: int, master_addr: str | None = None,
                  master_port: int = DEFAULT_MASTER_PORT, passed_env: list[str] = ()) -> dict:
    """The compose document: services node0..nodeN-1 running spec's job together.

    `passed_env` names variables compose takes from its own environment at `up` time
    (secrets such as HF_TOKEN): only the name is written, never a value.
    """
    if nodes < 1:
        raise FtimgError(f"--nodes {nodes}: need at least one node")
    if gpus_per_node < 0:
        raise FtimgError(f"--gpus-per-node {gpus_per_node}: give 0 (CPU) or more")
    if not 0 < master_port < 65536:
        raise FtimgError(f"--master-port {master_port}: not a TCP port")
    return {"services": {f"node{rank}": node_service(spec, rank, nodes, gpus_per_node, master_addr,
                                                     master_port, list(passed_env))
                         for rank in range(nodes)}}


def dumps(model: dict, header: str = "") -> str:
    body = yaml.safe_dump(model, sort_keys=False, default_flow_style=False, width=120)
    return "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()) + body
