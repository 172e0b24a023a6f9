"""What `ftimg run` asks the engine for, built from options, the image's job list, host env and cwd.

Pure: every input is a value (the host environment, the cwd, the caller's ids,
a probe that says whether a host path is a file or a directory), so each launch
rule is unit-tested without Docker. `ftimg compose` renders the same spec as
compose services.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Callable, Mapping

from ftimg.errors import FtimgError
from ftimg.image.labels import FLAGS_LABEL, JOBS_LABEL, RUN_IMAGE_LABEL, RUN_JOB_LABEL, RUN_OUTPUT_LABEL
from ftimg.job.secrets import SecretInput, collect_secrets, exposed_env_note, is_secret, split_secret_flags

# Host paths appear in the container under this prefix, at their absolute host path:
# ./data.jsonl run from /home/me/proj is /mnt/host/home/me/proj/data.jsonl inside.
HOST_PREFIX = "/mnt/host"
HF_CACHE_TARGET = "/mnt/hf-cache"
# The job maps container paths in its error messages back to what the user typed.
PATH_MAP_ENV = "FTIMG_PATH_MAP"
# Set only by `ftimg run` (with_run_name): the container name a second job's lock error tells the user to stop.
RUN_NAME_ENV = "FTIMG_RUN_NAME"
# Flags the job writes to: mounted read-write (a file flag mounts its directory).
OUTPUT_FLAGS = {"output_dir": "dir", "output_path": "file"}
# A dataset spec names its data relative to its own folder, so the folder is mounted, not the file.
FOLDER_INPUT_FLAGS = {"dataset_spec"}
# Where the jobs write when given no output flag (the jobs' own defaults, relative to cwd).
DEFAULT_OUTPUTS = {"output_dir": "output/{job}", "output_path": "output/{job}/predictions.jsonl"}
CONFIG_SUFFIXES = (".yaml", ".yml")
FILE_SUFFIXES = {".json", ".jsonl", ".csv", ".parquet", ".txt", ".yaml", ".yml", ".arrow"}
# NVIDIA's recommendation for PyTorch containers; --ulimit NAME=... overrides one by name.
DEFAULT_ULIMITS = {"memlock": (-1, -1), "stack": (67108864, 67108864)}
# Docker's 64 MiB /dev/shm starves DataLoader workers and NCCL; tmpfs only uses what is written.
MAX_DEFAULT_SHM = 16 << 30
PASSTHROUGH_NAMES = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                     "NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "NPROC_PER_NODE")
PASSTHROUGH_PREFIXES = ("NCCL_", "TORCH_", "PYTORCH_")
IMAGE_USER = (1000, 1000)
SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}

PathKind = Callable[[str], "str | None"]  # host absolute path -> "file", "dir" or None


@dataclass(frozen=True)
class GpuRequest:
    """A device request: count -1 means every GPU; device_ids pins GPUs by index or UUID."""

    count: int = 0
    device_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool


@dataclass
class RunOptions:
    """`ftimg run`'s options as parsed, before anything is resolved."""

    image: str
    job: str
    job_args: list[str] = field(default_factory=list)
    gpus: str | None = None
    ipc: str | None = None
    shm_size: str | None = None
    ulimits: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # --secret NAME or NAME=FILE
    hf_cache: str | None = None
    user: str | None = None
    name: str | None = None
    network: str | None = None
    stop_timeout: int = 300


@dataclass
class RunSpec:
    image: str
    name: str
    job: str
    command: list[str]
    mounts: list[Mount]
    gpus: GpuRequest | None
    ipc_mode: str | None
    shm_size: int | None
    ulimits: dict[str, tuple[int, int]]
    user: str
    environment: dict[str, str]
    labels: dict[str, str]
    network: str | None
    stop_timeout: int
    init: bool = True
    create_dirs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Handed over as /run/secrets/NAME, never in command, environment or labels (secret_files.py).
    secrets: list[SecretInput] = field(default_factory=list)


def image_jobs(labels: Mapping[str, str], image: str) -> list[dict]:
    """The jobs an image advertises in its `org.ftimg.jobs` label."""
    raw = (labels or {}).get(JOBS_LABEL)
    if not raw:
        raise FtimgError(f"{image} carries no {JOBS_LABEL} label: it is not an ftimg train image. "
                         "Build one with `ftimg build` or pass --image ftimg/train:PROFILE")
    try:
        jobs = json.loads(raw)
        renames = json.loads(labels.get(FLAGS_LABEL) or "{}")
    except json.JSONDecodeError as exc:
        raise FtimgError(f"{image}: label {JOBS_LABEL} or {FLAGS_LABEL} is not valid JSON ({exc})") from None
    # The image's own flag table, so a flag it renames (--train_data) is mounted like its target (--data_path).
    return [{**job, "flag_renames": renames} for job in jobs] if renames else jobs


def find_job(jobs: list[dict], name: str, image: str) -> dict:
    for job in jobs:
        if job["name"] == name:
            return job
    listing = "\n  ".join(f"{job['name']:10} {job.get('description', '')}" for job in jobs)
    raise FtimgError(f"unknown job '{name}': {image} has these jobs:\n  {listing}")


def parse_gpus(value: str) -> GpuRequest:
    """`all`, a count (`2`), or `device=0,2` (docker's --gpus forms; quotes are tolerated)."""
    text = value.strip().strip("\"'")
    if text == "all":
        return GpuRequest(count=-1)
    if text.isdigit() and int(text) > 0:
        return GpuRequest(count=int(text))
    if text.startswith("count="):
        return parse_gpus(text[len("count="):])
    if text.startswith("device="):
        ids = tuple(part.strip() for part in text[len("device="):].split(",") if part.strip())
        if ids:
            return GpuRequest(device_ids=ids)
    raise FtimgError(f"--gpus {value}: expected `all`, a number of GPUs (e.g. 2) or device=0,2")


def parse_size(value: str, what: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([bkmgt]?)i?b?\s*", value.lower())
    if not match or int(match.group(1)) == 0:
        raise FtimgError(f"{what} {value}: expected a size such as 16g, 512m or a number of bytes")
    return int(match.group(1)) * SIZE_UNITS[match.group(2)]


def default_shm_size(host_memory_bytes: int) -> int:
    """16 GiB, or half the host's memory (in whole GiB, at least 1) when it has less than 32 GiB."""
    if host_memory_bytes <= 0:
        return MAX_DEFAULT_SHM
    return max(1 << 30, min(MAX_DEFAULT_SHM, host_memory_bytes // 2 >> 30 << 30))


def parse_ulimits(values: list[str]) -> dict[str, tuple[int, int]]:
    """Defaults plus each `NAME=SOFT[:HARD]` (-1 is unlimited)."""
    limits = dict(DEFAULT_ULIMITS)
    for value in values:
        name, _, numbers = value.partition("=")
        soft, _, hard = numbers.partition(":")
        try:
            limits[name.strip()] = (int(soft), int(hard or soft))
        except ValueError:
            raise FtimgError(f"--ulimit {value}: expected NAME=SOFT[:HARD], e.g. memlock=-1 "
                             "or nofile=65536:65536") from None
    return limits


def run_user(option: str | None, caller: tuple[int, int], host_env: Mapping[str, str]) -> str:
    """uid:gid the job runs as: the caller's, so outputs are theirs; never root.

    Under sudo that is the invoking user; a root shell gets the image's user.
    """
    if option:
        uid, _, gid = option.partition(":")
        if uid in ("0", "root") or gid in ("0", "root"):
            raise FtimgError(f"--user {option}: jobs never run as root; give a non-root UID[:GID]")
        return option
    uid, gid = caller
    if uid == 0:
        if host_env.get("SUDO_UID", "0") not in ("", "0"):
            return f"{host_env['SUDO_UID']}:{host_env.get('SUDO_GID') or host_env['SUDO_UID']}"
        return f"{IMAGE_USER[0]}:{IMAGE_USER[1]}"
    return f"{uid}:{gid}"


def parse_env_file(text: str, host_env: Mapping[str, str], where: str) -> dict[str, str]:
    """docker's --env-file format: NAME=VALUE lines, a bare NAME takes the host's value, # comments."""
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, has_value, value = line.partition("=")
        name = name.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name):
            raise FtimgError(f"{where}:{number}: expected NAME=VALUE or NAME, got a line starting {name[:20]!r}")
        if has_value:
            values[name] = value
        elif name in host_env:
            values[name] = host_env[name]
    return values


def job_environment(env_options: list[str], env_file_values: dict[str, str],
                    host_env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Pass-through settings < --env-file < --env; returns (environment, notes naming skipped names)."""
    environment = {name: value for name, value in sorted(host_env.items())
                   if name in PASSTHROUGH_NAMES or name.startswith(PASSTHROUGH_PREFIXES)}
    environment.update(env_file_values)
    notes = []
    for option in env_options:
        name, has_value, value = option.partition("=")
        if has_value:
            environment[name] = value
        elif name in host_env:
            environment[name] = host_env[name]
        else:
            notes.append(f"--env {name}: not set in this environment, not passed to the job")
    return environment, notes


def config_file_of(job_args: list[str]) -> str | None:
    """The YAML config given as the first job argument, as the jobs recognise it."""
    if job_args and not job_args[0].startswith("-") and job_args[0].endswith(CONFIG_SUFFIXES):
        return job_args[0]
    return None


def canonical_flag(name: str, renames: Mapping[str, str] | None = None) -> str:
    """`lora-r` -> `lora_r`; a flag the image's table renames -> its ftimg name (as the jobs do)."""
    name = name.replace("-", "_")
    return (renames or {}).get(name, name)


def host_path(value: str, cwd: str) -> str:
    path = PurePosixPath(value)
    if not path.is_absolute():
        path = PurePosixPath(cwd) / path
    parts: list[str] = []
    for part in path.parts[1:]:
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return "/" + "/".join(parts)


def looks_like_relative_path(value: str) -> bool:
    """A relative value the user surely meant as a host path (a hub id like org/model is not one)."""
    return not value.startswith("/") and (value.startswith(("./", "../")) or
                                          PurePosixPath(value).suffix in FILE_SUFFIXES)


def container_path(host: str) -> str:
    return HOST_PREFIX + host


class _Mounts:
    """Host paths to bind; read-write wins, and a path inside a read-write mount needs none."""

    def __init__(self):
        self.paths: dict[str, bool] = {}

    def add(self, path: str, read_only: bool) -> None:
        self.paths[path] = self.paths.get(path, True) and read_only

    def mounts(self) -> list[Mount]:
        writable = [path for path, ro in self.paths.items() if not ro]
        result = []
        for path, read_only in sorted(self.paths.items()):
            if read_only and any(_inside(path, parent) for parent in writable):
                continue
            result.append(Mount(path, container_path(path), read_only))
        return result


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _flag_positions(tokens: list[str], path_flags: set[str],
                    renames: Mapping[str, str]) -> list[tuple[int, str, str, bool]]:
    """(index, flag, value, joined) for each path flag: `--flag value` and `--flag=value`."""
    found = []
    for index, token in enumerate(tokens):
        if not token.startswith("--"):
            continue
        name, joined, value = token[2:].partition("=")
        flag = canonical_flag(name, renames)
        if flag not in path_flags:
            continue
        if joined:
            found.append((index, flag, value, True))
        elif index + 1 < len(tokens) and not tokens[index + 1].startswith("--"):
            found.append((index + 1, flag, tokens[index + 1], False))
    return found


def rewrite_job_args(job: dict, job_args: list[str], config: Mapping | None, cwd: str,
                     path_kind: PathKind) -> tuple[list[str], list[Mount], list[str], list[str], dict[str, str]]:
    """Rewrite host paths in the job's flags to container paths.

    Returns (argv, mounts, host dirs to create before the run, notes, container path ->
    the value the user typed). Inputs that
    exist on the host are mounted read-only; values that are not host paths (a hub
    id, a shipped DeepSpeed config name, `auto`) pass unchanged. Output flags are
    mounted read-write and their directory is created by the caller first. Path
    keys of a YAML config are overridden by flags that carry the container path.
    """
    path_flags = set(job.get("path_flags", [])) | set(OUTPUT_FLAGS)
    renames = job.get("flag_renames", {})
    mounts, create, notes, typed = _Mounts(), [], [], {}
    argv = list(job_args)

    def translate(flag: str, value: str) -> str:
        if value == "":
            return value
        path = host_path(value, cwd)
        if flag in OUTPUT_FLAGS:
            directory = path if OUTPUT_FLAGS[flag] == "dir" else str(PurePosixPath(path).parent)
            mounts.add(directory, read_only=False)
            create.append(directory)
            typed[container_path(path)] = value
            return container_path(path)
        if path_kind(path) is None:
            if looks_like_relative_path(value):
                notes.append(f"--{flag} {value}: not found on this host, passed to the job unchanged")
            return value
        mounts.add(str(PurePosixPath(path).parent) if flag in FOLDER_INPUT_FLAGS else path, read_only=True)
        typed[container_path(path)] = value
        return container_path(path)

    config_path = config_file_of(argv)
    if config_path is not None:
        path = host_path(config_path, cwd)
        mounts.add(path, read_only=True)
        argv[0] = container_path(path)
        typed[argv[0]] = config_path
    given = set()
    for index, flag, value, joined in _flag_positions(argv, path_flags, renames):
        given.add(flag)
        new = translate(flag, value)
        argv[index] = f"{argv[index].partition('=')[0]}={new}" if joined else new
    for key, value in (config or {}).items():
        flag = canonical_flag(str(key), renames)
        if flag in path_flags and flag not in given and isinstance(value, str):
            given.add(flag)
            new = translate(flag, value)
            if new != value:
                argv += [f"--{flag}", new]
    for flag, default in DEFAULT_OUTPUTS.items():
        if flag in job.get("path_flags", []) and flag not in given:
            argv += [f"--{flag}", translate(flag, default.format(job=job["name"]))]
    return argv, mounts.mounts(), list(dict.fromkeys(create)), notes, typed


def build_run_spec(options: RunOptions, jobs: list[dict], host_env: Mapping[str, str], cwd: str,
                   caller: tuple[int, int], host_memory_bytes: int, path_kind: PathKind,
                   name_suffix: str, config: Mapping | None = None,
                   env_file_values: dict[str, str] | None = None) -> RunSpec:
    """Everything the container is created with; raises FtimgError on a bad option or job."""
    job = find_job(jobs, options.job, options.image)
    job_args, flag_secrets = split_secret_flags(options.job_args)
    argv, mounts, create, notes, typed = rewrite_job_args(job, job_args, config, cwd, path_kind)
    environment, env_notes = job_environment(options.env, env_file_values or {}, host_env)
    environment[PATH_MAP_ENV] = json.dumps(typed, sort_keys=True)
    notes += env_notes
    secrets = collect_secrets(flag_secrets, options.secrets, environment, cwd)
    notes += [exposed_env_note(name) for name in sorted(environment) if is_secret(name)]
    notes += [f"{config_file_of(options.job_args)}: {key} is a secret; the file is mounted read-only into the job, "
              "which keeps the value out of everything it saves (--secret keeps it out of the file too)"
              for key in (config or {}) if is_secret(key)]
    if options.hf_cache:
        cache = host_path(options.hf_cache, cwd)
        mounts.append(Mount(cache, HF_CACHE_TARGET, read_only=False))
        create.append(cache)
        environment["HF_HOME"] = HF_CACHE_TARGET
    if options.ipc not in (None, "host", "private", "shareable"):
        raise FtimgError(f"--ipc {options.ipc}: expected host, private or shareable")
    if options.ipc == "host" and options.shm_size:
        raise FtimgError("--ipc host shares the host's /dev/shm, so --shm-size does not apply: give one of them")
    shm = None if options.ipc == "host" else (parse_size(options.shm_size, "--shm-size") if options.shm_size
                                              else default_shm_size(host_memory_bytes))
    output = next((m.source for m in mounts if not m.read_only and m.target != HF_CACHE_TARGET), "")
    labels = {RUN_JOB_LABEL: job["name"], RUN_IMAGE_LABEL: options.image, RUN_OUTPUT_LABEL: output}
    name = options.name or f"ftimg-{job['name']}-{name_suffix}"
    return RunSpec(
        image=options.image,
        name=name,
        job=job["name"],
        command=[job["name"], *argv],
        mounts=mounts,
        gpus=parse_gpus(options.gpus) if options.gpus else None,
        ipc_mode=options.ipc,
        shm_size=shm,
        ulimits=parse_ulimits(options.ulimits),
        user=run_user(options.user, caller, host_env),
        environment=environment,
        labels=labels,
        network=options.network,
        stop_timeout=options.stop_timeout,
        create_dirs=create,
        notes=notes,
        secrets=secrets,
    )


def with_run_name(spec: RunSpec) -> RunSpec:
    """The spec `ftimg run` starts: the job names its container in its output lock, so a second job can say
    `ftimg stop NAME`. Only here: compose services and sbatch steps run under other names (or none)."""
    return replace(spec, environment={**spec.environment, RUN_NAME_ENV: spec.name})


def missing_gpu_runtime(info: Mapping) -> str | None:
    """Why the engine cannot give containers GPUs (None when it can: nvidia runtime or CDI)."""
    if "nvidia" in (info.get("Runtimes") or {}) or info.get("CDISpecDirs"):
        return None
    runtimes = ", ".join(info.get("Runtimes") or {}) or "none"
    return ("--gpus needs the NVIDIA Container Toolkit, and this Docker engine has no nvidia runtime "
            f"(runtimes: {runtimes}) and no CDI. Install it (`apt-get install nvidia-container-toolkit`), "
            "run `sudo nvidia-ctk runtime configure --runtime=docker` and restart docker; "
            "or leave out --gpus to run on CPU")
