"""`ftimg doctor`: what a bug report needs, each line with what to do when it fails."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

import docker

from . import engine
from .errors import EngineError

MIN_FREE_GIB = 30  # a cu121 stack build peaks at ~28 GB on top of what was there (docs/images.md)
MIN_SHM_MIB = 1024


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _gib(nbytes: int) -> float:
    return nbytes / (1 << 30)


def disk_check(info: dict) -> Check:
    """Free space where the engine keeps its images (checked only when that is on this host)."""
    root = info.get("DockerRootDir", "/var/lib/docker")
    if not os.path.isdir(root):
        return Check("disk space", True, f"{root} is on a remote engine; not checked", required=False)
    free = shutil.disk_usage(root).free
    return Check("disk space", _gib(free) >= MIN_FREE_GIB, f"{_gib(free):.0f} GiB free at {root}",
                 f"free at least {MIN_FREE_GIB} GiB (`docker system prune`, or move the engine's data-root)")


def run_checks() -> list[Check]:
    """Every check, in order; a failed engine check skips the engine-dependent ones."""
    checks = []
    try:
        client = engine.connect()
    except EngineError as exc:
        return [Check("docker engine", False, str(exc), "start the engine or set DOCKER_HOST")]
    version = engine.engine_version(client)
    info = engine.engine_info(client)
    checks.append(Check("docker engine", True, f"server {version.get('Version')} (API {version.get('ApiVersion')}), "
                                               f"storage {info.get('Driver')}"))
    checks.append(disk_check(info))
    runtimes = info.get("Runtimes", {})
    has_nvidia = "nvidia" in runtimes
    checks.append(Check("nvidia runtime", has_nvidia,
                        "registered" if has_nvidia else f"absent (runtimes: {', '.join(runtimes)})",
                        "install the NVIDIA Container Toolkit (`apt-get install nvidia-container-toolkit`, "
                        "then `nvidia-ctk runtime configure --runtime=docker` and restart docker); "
                        "without it jobs run on CPU only", required=False))
    checks.append(_gpu_check())
    checks.append(_shm_check())
    checks.append(memlock_check(client))
    checks.append(Check("debootstrap", shutil.which("debootstrap") is not None,
                        shutil.which("debootstrap") or "not installed",
                        "`apt-get install debootstrap` (needed only to build the ftimg/base image)",
                        required=False))
    return checks


def memlock_check(client) -> Check:
    """Whether the engine lets a container lift memlock (`ftimg run` asks for unlimited, as NVIDIA advises).

    Some engines (rootless Docker, sandboxes) refuse it; `ftimg run` then quietly keeps the
    engine's limit, so this is the one place that says so.
    """
    from .run import refused_ulimit  # run imports the runspec machinery doctor otherwise does not need

    image = next((tag for found in client.images.list() for tag in found.tags if tag.startswith("ftimg/")), None)
    if image is None:
        return Check("memlock", True, "no ftimg image yet to probe with; not checked", required=False)
    try:
        client.containers.run(image, ["true"], entrypoint=[], remove=True, network_disabled=True,
                              ulimits=[docker.types.Ulimit(name="memlock", soft=-1, hard=-1)])
    except docker.errors.DockerException as exc:
        if refused_ulimit(str(exc)) != "memlock":
            return Check("memlock", False, f"probe with {image} failed: {str(exc)[:200]}", required=False)
        return Check("memlock", False, "this engine refuses --ulimit memlock=-1: jobs run with its own limit "
                     "(pinned memory for NCCL/RDMA may be capped)",
                     "raise the engine's limit (LimitMEMLOCK=infinity in docker.service, then restart docker); "
                     "`ftimg run` keeps working meanwhile", required=False)
    return Check("memlock", True, "containers may lift memlock to unlimited")


def _gpu_check() -> Check:
    if shutil.which("nvidia-smi") is None:
        return Check("GPUs", False, "nvidia-smi not found on this host",
                     "install the NVIDIA driver to train on GPUs; CPU runs still work", required=False)
    result = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    gpus = [line for line in result.stdout.splitlines() if line.startswith("GPU")]
    return Check("GPUs", bool(gpus), "; ".join(gpus) or result.stderr.strip() or "none listed",
                 "check the driver with `nvidia-smi`", required=False)


def _shm_check() -> Check:
    try:
        stats = os.statvfs("/dev/shm")
    except OSError:
        return Check("host /dev/shm", False, "not mounted", "mount a tmpfs on /dev/shm", required=False)
    size_mib = stats.f_blocks * stats.f_frsize >> 20
    return Check("host /dev/shm", size_mib >= MIN_SHM_MIB, f"{size_mib} MiB",
                 f"grow it to at least {MIN_SHM_MIB} MiB; `ftimg run` gives containers their own "
                 "--shm-size (Docker's default 64 MiB is too small for DataLoader workers and NCCL)",
                 required=False)
