"""Run ftimg jobs end to end, in the built image (default) or with a local Python (FTIMG_JOBS_PYTHON).

In the image: ``docker run --rm --user UID:GID -v TMP:TMP -w TMP IMAGE JOB ...`` with
IMAGE from FTIMG_TEST_IMAGE (default ftimg/train:cu121-torch2.1); the image supplies
the tiny model. Locally: ``$FTIMG_JOBS_PYTHON -m ftimg_jobs JOB ...`` with
PYTHONPATH=entrypoints and a tiny model generated once per session.
"""

import os
import signal
import subprocess
import uuid

import pytest
from project_paths import ENTRYPOINTS

DEFAULT_IMAGE = "ftimg/train:cu121-torch2.1"


class JobProcess:
    """A running job; signals reach the job itself (through ``docker kill`` in the image)."""

    def __init__(self, popen, container=None):
        self.popen = popen
        self.container = container

    def send_signal(self, signum):
        if self.container:
            subprocess.run(["docker", "kill", f"--signal={signal.Signals(signum).name}", self.container],
                           capture_output=True, check=False)
        else:
            self.popen.send_signal(signum)

    def wait(self, timeout=600):
        output, _ = self.popen.communicate(timeout=timeout)
        return self.popen.returncode, output


class JobRunner:
    def __init__(self, python, image, tiny_model, shared_dir):
        self.python = python
        self.image = image
        self.tiny_model = tiny_model
        # pytest's base temp dir: mounted whole, so a job sees what another test's job wrote
        # (merge reads the adapter a lora-sft fixture trained in its own tmp dir).
        self.shared_dir = shared_dir

    def command(self, argv, cwd, env=None, container=None, module="ftimg_jobs"):
        env = dict(env or {})
        if self.python:
            full_env = {key: value for key, value in os.environ.items()
                        if key not in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "NPROC_PER_NODE", "NNODES")}
            full_env.update(PYTHONPATH=str(ENTRYPOINTS), FTIMG_DEFAULT_MODEL=str(self.tiny_model), **env)
            return [self.python, "-m", module, *argv], full_env
        cmd = ["docker", "run", "--rm", "--user", f"{os.getuid()}:{os.getgid()}", "-v", f"{cwd}:{cwd}",
               "-v", f"{self.shared_dir}:{self.shared_dir}", "-w", str(cwd),
               "-e", f"HOME={cwd}"]
        for key, value in env.items():
            cmd += ["-e", f"{key}={value}"]
        if container:
            cmd += ["--name", container]
        if module != "ftimg_jobs":
            cmd += ["--entrypoint", "python", self.image, "-m", module, *argv]
        else:
            cmd += [self.image, *argv]
        return cmd, None

    def run(self, *argv, cwd, env=None, timeout=900, module="ftimg_jobs"):
        cmd, full_env = self.command(list(argv), cwd, env, module=module)
        return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)

    def start(self, *argv, cwd, env=None):
        container = None if self.python else f"ftimg-test-{uuid.uuid4().hex[:12]}"
        cmd, full_env = self.command(list(argv), cwd, env, container=container)
        popen = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
        return JobProcess(popen, container)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    python = os.environ.get("FTIMG_JOBS_PYTHON")
    if not python:
        return None
    directory = tmp_path_factory.mktemp("tiny-model") / "tiny-llama"
    subprocess.run([python, "-m", "ftimg_jobs.model.tiny_model", str(directory)], check=True,
                   env={**os.environ, "PYTHONPATH": str(ENTRYPOINTS)}, capture_output=True, timeout=300)
    return directory


@pytest.fixture(scope="session")
def jobs(tiny_model_dir, tmp_path_factory):
    return JobRunner(os.environ.get("FTIMG_JOBS_PYTHON"), os.environ.get("FTIMG_TEST_IMAGE", DEFAULT_IMAGE),
                     tiny_model_dir, tmp_path_factory.getbasetemp())
