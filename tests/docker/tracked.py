"""Helpers shared by the run/compose/push docker tests: the ftimg CLI as a subprocess, tracked
containers, and whether this engine may raise memlock (rootless or sandboxed engines may not)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import docker.errors
from ftimg.image.labels import RUN_JOB_LABEL

FTIMG = [sys.executable, "-c", "from ftimg.cli import main; main()"]


def ftimg(*args, env=None, cwd=None, timeout=900):
    """Run the ftimg CLI; (exit code, stdout, stderr)."""
    result = subprocess.run([*FTIMG, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})}, cwd=cwd)
    return result.returncode, result.stdout, result.stderr


def job_container_names(client):
    return {c.name for c in client.containers.list(all=True, filters={"label": RUN_JOB_LABEL})}


@pytest.fixture
def containers(client):
    """Names of containers a test creates (or that ftimg creates for it); removed afterwards."""
    before = job_container_names(client)
    names = []
    yield names
    for name in set(names) | (job_container_names(client) - before):
        try:
            client.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass


@pytest.fixture(scope="session")
def memlock_args(client, train_image):
    """[] when the engine can lift memlock to unlimited, else a lower memlock it grants."""
    probe = None
    try:
        probe = client.containers.create(train_image, entrypoint=["true"], ulimits=[
            docker.types.Ulimit(name="memlock", soft=-1, hard=-1)])
        probe.start()
        return []
    except docker.errors.APIError:
        return ["--ulimit", "memlock=65536"]
    finally:
        if probe is not None:
            probe.remove(force=True)


def tree_contains(root: Path, needle: bytes) -> list[str]:
    """Files under root whose bytes contain needle."""
    return [str(path) for path in Path(root).rglob("*") if path.is_file() and needle in path.read_bytes()]
