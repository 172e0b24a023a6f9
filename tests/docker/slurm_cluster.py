"""A Slurm cluster of containers for the docker tier: slurmctld and two slurmd nodes with munge, from
Debian's packages (tests/docker/slurm/).

- Built FROM the base image ftimg makes itself; nothing is pulled. Unprivileged containers (this
  engine refuses --privileged), so slurm.conf uses no cgroups.
- Its own Docker network; container name = hostname = Slurm NodeName, prefixed with a random id so
  that two test sessions never meet.
- A shared directory bind-mounted at the same path on the host and every node: the job containers of
  `--runtime docker` are started on the host's engine (its socket is mounted into the nodes), which
  resolves their bind mounts on the host.
- The host stands in for the login node: `login_bin` holds sbatch, sinfo, scontrol, ... that run the
  real commands in the controller container (`docker exec`, same working directory), as ssh to a login
  node would. ftimg finds them on PATH like on any login node.

Everything it creates (image, containers, network) is removed by `remove()`.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import time
from pathlib import Path

import docker.errors
from ftimg import engine

SLURM_DIR = Path(__file__).resolve().parent / "slurm"
LOGIN_COMMANDS = ("sbatch", "sinfo", "squeue", "scontrol", "scancel", "srun")
NODE_COUNT = 2
UP_TIMEOUT_S = 60
FINISHED_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
                   "DEADLINE", "PREEMPTED"}


class SlurmCluster:
    def __init__(self, client, base_image: str, workdir: Path):
        self.client = client
        self.base_image = base_image
        self.prefix = f"ftimgslurm{secrets.token_hex(3)}"
        self.image = f"ftimg/test-slurm:{self.prefix}"
        self.network = f"{self.prefix}-net"
        self.controller = f"{self.prefix}-ctld"
        self.nodes = [f"{self.prefix}-node{i}" for i in range(1, NODE_COUNT + 1)]
        self.shared = workdir / "shared"
        self.login_bin = workdir / "login-bin"
        self.conf = workdir / "slurm.conf"
        self.created: list[str] = []

    # --- life cycle -----------------------------------------------------------------------------

    def build(self) -> None:
        engine.build_image(self.client, SLURM_DIR, "Dockerfile", self.image, {"BASE": self.base_image})

    def start(self) -> None:
        self.shared.mkdir(parents=True, exist_ok=True)
        self.shared.chmod(0o777)
        template = (SLURM_DIR / "slurm.conf").read_text()
        self.conf.write_text(template.replace("@CONTROLLER@", self.controller)
                             .replace("@NODES@", f"{self.prefix}-node[1-{NODE_COUNT}]"))
        self.client.networks.create(self.network, driver="bridge")
        volumes = {str(self.shared): {"bind": str(self.shared), "mode": "rw"},
                   str(self.conf): {"bind": "/etc/slurm/slurm.conf", "mode": "ro"}}
        self._run(self.controller, "ctld", volumes)
        socket = {"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"}}
        for node in self.nodes:
            self._run(node, "node", {**volumes, **socket})
        self._write_login_commands()

    def _run(self, name: str, role: str, volumes: dict) -> None:
        self.created.append(name)
        self.client.containers.run(self.image, role, name=name, hostname=name, network=self.network,
                                   volumes=volumes, detach=True, shm_size="1g")

    def _write_login_commands(self) -> None:
        self.login_bin.mkdir(exist_ok=True)
        for command in LOGIN_COMMANDS:
            path = self.login_bin / command
            path.write_text(f'#!/bin/sh\n# {command} on the test cluster\'s login node (its controller), here.\n'
                            f'exec docker exec -i -w "$PWD" {self.controller} {command} "$@"\n')
            path.chmod(0o755)

    def wait_until_idle(self) -> float:
        """Seconds until both nodes are idle; fails with the controller's log otherwise."""
        started = time.monotonic()
        while time.monotonic() - started < UP_TIMEOUT_S:
            result = self.exec("sinfo", "-h", "-o", "%T %D", check=False)
            if result.returncode == 0 and result.stdout.split() == ["idle", str(NODE_COUNT)]:
                return time.monotonic() - started
            time.sleep(0.5)
        raise AssertionError(f"the Slurm nodes did not come up in {UP_TIMEOUT_S} s:\n{self.logs()}")

    def remove(self) -> None:
        """Job containers the nodes started (their names end with a node's name), nodes, network, image."""
        leftovers = [c.name for c in self.client.containers.list(all=True, filters={"name": self.prefix})]
        for name in [*leftovers, *self.created]:
            try:
                self.client.containers.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass
        for network in self.client.networks.list(names=[self.network]):
            network.remove()
        engine.remove_image(self.client, self.image)

    # --- using it -------------------------------------------------------------------------------

    def exec(self, *argv, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """A command on the login node (the controller container)."""
        result = subprocess.run(["docker", "exec", self.controller, *map(str, argv)], capture_output=True,
                                text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, argv))} failed: {result.stderr}")
        return result

    def login_env(self) -> dict:
        """The environment of a shell on the login node: Slurm's commands first on PATH."""
        return {"PATH": f"{self.login_bin}{os.pathsep}{os.environ['PATH']}"}

    def job_state(self, job_id: str) -> tuple[str, int]:
        """(JobState, Restarts) of a job."""
        text = self.exec("scontrol", "show", "job", "-o", job_id).stdout
        state = re.search(r"JobState=(\S+)", text).group(1)
        restarts = int(re.search(r"Restarts=(\d+)", text).group(1))
        return state, restarts

    def wait_for_job(self, job_id: str, timeout: float) -> str:
        """The job's final state; fails with the logs when it takes longer than `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state, _ = self.job_state(job_id)
            if state in FINISHED_STATES:
                return state
            time.sleep(1)
        raise AssertionError(f"job {job_id} did not finish in {timeout:.0f} s "
                             f"(state {self.job_state(job_id)[0]}):\n{self.job_logs(job_id)}")

    def job_logs(self, job_id: str) -> str:
        """Every log of a job (the script's and one per node), for failure messages."""
        parts = []
        for path in sorted(self.shared.rglob(f"*-{job_id}*")):
            if path.is_file() and path.suffix in (".out", ".log"):
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts) or "(no logs)"

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.client.containers.get(name).logs(tail=30).decode(errors='replace')}"
                         for name in self.created)
