"""`ftimg doctor`: what a bug report needs, each line with what to do when it fails."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

import docker
from ftimg import engine
from ftimg.cluster import slurm
from ftimg.errors import EngineError, FtimgError

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


def run_checks(probe_node: bool = False) -> list[Check]:
    """Every check, in order; a failed engine check skips the engine-dependent ones. On a Slurm login
    node the Slurm checks follow, and `probe_node` runs one short step on a compute node."""
    return engine_checks() + slurm_checks(probe_node)


def engine_checks() -> list[Check]:
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
    from ftimg.job.run import refused_ulimit  # run imports the runspec machinery doctor otherwise does not need

    tags = sorted(tag for found in client.images.list() for tag in found.tags
                  if tag.startswith(("ftimg/base:", "ftimg/train:")))
    if not tags:
        return Check("memlock", True, "no ftimg image yet to probe with; not checked", required=False)
    image, probe = tags[0], None
    try:
        # create + start, not run(remove=True): a start the engine refuses would leave a created container behind.
        probe = client.containers.create(image, ["true"], entrypoint=[], network_disabled=True,
                                         ulimits=[docker.types.Ulimit(name="memlock", soft=-1, hard=-1)])
        probe.start()
        probe.wait()
    except docker.errors.DockerException as exc:
        if refused_ulimit(str(exc)) != "memlock":
            return Check("memlock", False, f"probe with {image} failed: {str(exc)[:200]}", required=False)
        return Check("memlock", False, "this engine refuses --ulimit memlock=-1: jobs run with its own limit "
                     "(pinned memory for NCCL/RDMA may be capped)",
                     "raise the engine's limit (LimitMEMLOCK=infinity in docker.service, then restart docker); "
                     "`ftimg run` keeps working meanwhile", required=False)
    finally:
        if probe is not None:
            probe.remove(force=True)
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


PYXIS_FIX = ("ask the cluster's admins for pyxis and enroot (github.com/NVIDIA/pyxis: a plugstack.conf line "
             "`required /usr/local/lib/slurm/spank_pyxis.so`), or use `ftimg sbatch --runtime apptainer` or "
             "`--runtime docker`")


def slurm_checks(probe_node: bool = False) -> list[Check]:
    """What `ftimg sbatch` can use here: Slurm's commands and controller, pyxis, apptainer, and (probed)
    what a compute node has to run images with."""
    if shutil.which("sbatch") is None:
        return [Check("slurm", True, "sbatch not on PATH: not a Slurm login node "
                                     "(only `ftimg sbatch --submit` needs one)", required=False)]
    checks = [_slurm_check(), _pyxis_check(), _apptainer_check()]
    if probe_node:
        checks.append(_node_check())
    return checks


def _slurm_check() -> Check:
    try:
        version = slurm.run_slurm(["sbatch", "--version"]).strip()
        ping = slurm.run_slurm(["scontrol", "ping"]).strip().replace("\n", "; ")
    except FtimgError as exc:
        return Check("slurm", False, str(exc), "check that slurmctld runs and this node's slurm.conf names it",
                     required=False)
    return Check("slurm", "UP" in ping, f"{version}; {ping}", "start slurmctld (`scontrol ping` says DOWN)",
                 required=False)


def _pyxis_check() -> Check:
    """pyxis adds --container-image to srun (a SPANK plugin loaded from plugstack.conf)."""
    try:
        loaded = "--container-image" in slurm.run_slurm(["srun", "--help"])
        config = slurm.run_slurm(["scontrol", "show", "config"])
    except FtimgError as exc:
        return Check("pyxis", False, str(exc), PYXIS_FIX, required=False)
    plugstack = slurm.config_value(config, "PlugStackConfig") or "/etc/slurm/plugstack.conf"
    lines = slurm.pyxis_in_plugstack(plugstack)
    if loaded:
        return Check("pyxis", True, "srun has --container-image" + (f" ({lines[0]})" if lines else ""),
                     required=False)
    return Check("pyxis", False, f"srun has no --container-image: pyxis is not loaded ({plugstack}: "
                                 + ("; ".join(lines) if lines else "no pyxis line") + ")",
                 PYXIS_FIX, required=False)


def _apptainer_check() -> Check:
    for program in ("apptainer", "singularity"):
        if shutil.which(program):
            result = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=30)
            return Check("apptainer", result.returncode == 0, result.stdout.strip() or result.stderr.strip(),
                         f"`{program} --version` fails; reinstall it", required=False)
    return Check("apptainer", False, "not on this login node",
                 "install apptainer (apptainer.org) to use `ftimg sbatch --runtime apptainer`", required=False)


def _node_check() -> Check:
    try:
        found = slurm.probe_node()
    except FtimgError as exc:
        return Check("compute node", False, str(exc), "run `ftimg doctor --probe-node` where srun can start a "
                                                       "step (a login node with a free node)", required=False)
    runtimes = [f"docker engine {found['docker']}" if found.get("docker") else "no docker engine",
                found.get("apptainer") or "no apptainer", f"enroot {found['enroot']}" if found.get("enroot")
                else "no enroot"]
    usable = bool(found.get("docker") or found.get("apptainer") or found.get("enroot"))
    return Check("compute node", usable, f"{found.get('node', '?')}: {', '.join(runtimes)}",
                 "a node needs pyxis/enroot, apptainer or a Docker engine to run the image", required=False)
