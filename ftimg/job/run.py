"""`ftimg run`, `ps`, `logs`, `stop`: a job of the train image in a container, on the caller's files.

The run spec is built by the pure `runspec` module; this module gathers its inputs
(image labels, host env, the YAML config, which host paths exist), makes the output
directories, and drives the container. It reports through callbacks and never prints.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping

import yaml

from ftimg import engine
from ftimg.errors import FtimgError
from ftimg.image.labels import RUN_IMAGE_LABEL, RUN_JOB_LABEL, RUN_OUTPUT_LABEL
from ftimg.job.runspec import (RunOptions, RunSpec, build_run_spec, config_file_of, host_path, image_jobs,
                               missing_gpu_runtime, parse_env_file, with_run_name)
from ftimg.job.secret_files import secret_mounts

log = logging.getLogger(__name__)
RLIMIT_ERROR = re.compile(r"rlimit type (\d+)|RLIMIT_([A-Z]+)")
RLIMIT_NAMES = {0: "cpu", 1: "fsize", 2: "data", 3: "stack", 4: "core", 5: "rss", 6: "nproc", 7: "nofile",
                8: "memlock", 9: "as", 10: "locks", 11: "sigpending", 12: "msgqueue", 13: "nice", 14: "rtprio",
                15: "rttime"}
OnOutput = Callable[[bytes], None]
OnEvent = Callable[[str], None]


@dataclass
class JobContainer:
    name: str
    job: str
    image: str
    state: str
    status: str
    output: str
    created: int


def path_kind(path: str) -> str | None:
    if os.path.isdir(path):
        return "dir"
    if os.path.exists(path):
        return "file"
    return None


def host_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def _read_config(job_args: list[str], cwd: str) -> dict | None:
    name = config_file_of(job_args)
    if name is None:
        return None
    path = Path(host_path(name, cwd))
    if not path.is_file():
        raise FtimgError(f"config file {name} not found (looked at {path})")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise FtimgError(f"{name}: invalid YAML: {exc}") from None
    return document if isinstance(document, dict) else None


def _read_env_files(env_files: list[str], host_env: Mapping[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in env_files:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise FtimgError(f"--env-file {name}: cannot read it ({exc.strerror})") from None
        values.update(parse_env_file(text, host_env, name))
    return values


def prepare_run(client, options: RunOptions, env_files: list[str] = (),
                host_env: Mapping[str, str] | None = None, cwd: str | None = None) -> RunSpec:
    """Resolve options against the image (its job list) and this host; nothing is created yet.

    Unknown jobs, bad options and a missing GPU runtime fail here, before any container exists.
    """
    host_env = dict(os.environ if host_env is None else host_env)
    cwd = cwd or os.getcwd()
    labels = engine.inspect_image(client, options.image)["Config"].get("Labels") or {}
    jobs = image_jobs(labels, options.image)
    spec = build_run_spec(options, jobs, host_env, cwd, (os.getuid(), os.getgid()), host_memory_bytes(),
                          path_kind, f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}",
                          config=_read_config(options.job_args, cwd),
                          env_file_values=_read_env_files(list(env_files), host_env))
    if spec.gpus is not None:
        problem = missing_gpu_runtime(engine.engine_info(client))
        if problem:
            raise FtimgError(problem)
    return spec


def make_output_dirs(spec: RunSpec) -> None:
    """Create the output directories on the host first, so they belong to the job's user, not root."""
    uid, _, gid = spec.user.partition(":")
    for directory in spec.create_dirs:
        path = Path(directory)
        try:
            path.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0 and uid.isdigit():
                os.chown(path, int(uid), int(gid) if gid.isdigit() else int(uid))
        except OSError as exc:
            raise FtimgError(f"cannot create output directory {path}: {exc.strerror}") from None


def refused_ulimit(message: str) -> str | None:
    """The limit an engine may not raise, from runc's or crun's start error (rootless engines, sandboxes)."""
    match = RLIMIT_ERROR.search(message)
    if not match:
        return None
    if match.group(1):
        return RLIMIT_NAMES.get(int(match.group(1)))
    return match.group(2).lower()


def start_run(client, spec: RunSpec, on_event: OnEvent = lambda _: None) -> str:
    """Make the output directories, create and start the container; its name.

    An engine that may not raise a limit (rootless Docker cannot lift memlock above
    its own) refuses to start the container: the job then runs with the engine's
    limit for that one (`ftimg doctor` reports it once, with how to lift it).

    Secrets are bind-mounted files that exist on the host only until the container has started.
    """
    with secret_mounts(spec.secrets, os.environ,
                       on_warning=lambda text: on_event(f"warning: {text}")) as secret_files:
        return _create_and_start(client, replace(with_run_name(spec), mounts=[*spec.mounts, *secret_files]), on_event)


def _create_and_start(client, spec: RunSpec, on_event: OnEvent) -> str:
    make_output_dirs(spec)
    while True:
        engine.create_job_container(client, spec)
        try:
            engine.start_container(client, spec.name)
            return spec.name
        except FtimgError as exc:
            engine.remove_container(client, spec.name)
            name = refused_ulimit(str(exc))
            if name not in spec.ulimits:
                raise
            soft, _hard = spec.ulimits.pop(name)
            # Said once per host by `ftimg doctor` (its memlock check), not on every run.
            log.debug("engine refused --ulimit %s=%s; running with the engine's own limit", name, soft)


def follow_run(client, name: str, stop_timeout: int, keep: bool, on_output: OnOutput,
               on_event: OnEvent = lambda _: None) -> int:
    """Stream the job's output live until it exits; its exit code.

    KeyboardInterrupt (Ctrl-C) stops the job with SIGTERM and `stop_timeout` seconds
    to save a checkpoint, then returns its exit code (143 for a clean stop). The
    container is removed afterwards unless `keep`.
    """
    try:
        try:
            for chunk in engine.container_output(client, name):
                on_output(chunk)
        except KeyboardInterrupt:
            on_event(f"stopping {name}: SIGTERM, up to {stop_timeout}s to save a checkpoint "
                     "(Ctrl-C again kills it)")
            engine.stop_container(client, name, stop_timeout)
        code = engine.wait_container(client, name)
    finally:
        if not keep:
            engine.remove_container(client, name)
    return code


def list_job_containers(client) -> list[JobContainer]:
    """The containers `ftimg run` created, newest first."""
    rows = engine.list_containers(client, RUN_JOB_LABEL)
    containers = []
    for row in rows:
        labels = row.get("Labels") or {}
        containers.append(JobContainer(
            name=(row.get("Names") or ["?"])[0].lstrip("/"), job=labels.get(RUN_JOB_LABEL, ""),
            image=labels.get(RUN_IMAGE_LABEL, row.get("Image", "")), state=row.get("State", ""),
            status=row.get("Status", ""), output=labels.get(RUN_OUTPUT_LABEL, ""),
            created=row.get("Created", 0)))
    return sorted(containers, key=lambda c: c.created, reverse=True)


def job_container(client, name: str) -> JobContainer:
    """One of ftimg's job containers by name, or an error listing them."""
    containers = list_job_containers(client)
    for container in containers:
        if container.name == name:
            return container
    known = ", ".join(c.name for c in containers) or "none"
    raise FtimgError(f"no ftimg job container named {name} (job containers: {known})")


def stop_job(client, name: str, stop_timeout: int, remove: bool) -> int:
    """SIGTERM the job (SIGKILL after stop_timeout); its exit code. Removes the container when asked."""
    job_container(client, name)
    engine.stop_container(client, name, stop_timeout)
    code = engine.wait_container(client, name)
    if remove:
        engine.remove_container(client, name)
    return code
