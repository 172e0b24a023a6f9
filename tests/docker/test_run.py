"""`ftimg run`, `ps`, `logs`, `stop` against the real engine and train image, read back with docker inspect."""

import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest
from tracked import FTIMG, containers, ftimg, job_container_names, memlock_args, tree_contains  # noqa: F401

import docker.errors
from ftimg import engine
from ftimg.job.run import make_output_dirs
from ftimg.job.runspec import RunOptions, build_run_spec, image_jobs, run_user

pytestmark = pytest.mark.docker

SENTINEL = "hf_sentinel_6b1f0c9e"


@pytest.fixture
def workdir(tmp_path, project_root):
    shutil.copy(project_root / "entrypoints/data/sft/alpaca_zh_en.json", tmp_path / "train.json")
    return tmp_path


def inspect(client, name):
    return client.api.inspect_container(name)


def test_cpu_job_runs_as_the_caller_on_mounted_files_with_limits_and_no_leaked_secret(
        client, train_image, workdir, containers, memlock_args):
    (workdir / "sft.yaml").write_text("data_path: train.json\nlora_r: 4\nlogging_steps: 1\n")
    name = "ftimg-test-run-cpu"
    containers.append(name)
    code, out, err = ftimg("run", "--image", train_image, "--keep", "--name", name, "-e", "HF_TOKEN",
                           *memlock_args, "lora-sft", "sft.yaml", "--max_steps", "2", "--output_dir=out",
                           cwd=workdir, env={"HF_TOKEN": SENTINEL, "NCCL_DEBUG": "INFO", "OMP_NUM_THREADS": "1"})
    assert code == 0, err[-3000:]
    info = inspect(client, name)
    host, config = info["HostConfig"], info["Config"]
    user = run_user(None, (os.getuid(), os.getgid()), os.environ)
    assert config["User"] == user and not user.startswith("0:")
    assert host["Init"] is True
    assert host["ShmSize"] >= 1 << 30
    limits = {u["Name"]: (u["Soft"], u["Hard"]) for u in host["Ulimits"]}
    assert limits["stack"] == (67108864, 67108864)
    assert limits["memlock"] == ((-1, -1) if not memlock_args else (65536, 65536))
    assert host["DeviceRequests"] in (None, [])
    mounts = {m["Target"]: (m["Source"], m.get("ReadOnly", False)) for m in host["Mounts"]}
    inside = f"/mnt/host{workdir}"
    assert mounts == {f"{inside}/sft.yaml": (f"{workdir}/sft.yaml", True),
                      f"{inside}/train.json": (f"{workdir}/train.json", True),
                      f"{inside}/out": (f"{workdir}/out", False)}
    assert config["Cmd"] == ["lora-sft", f"{inside}/sft.yaml", "--max_steps", "2", f"--output_dir={inside}/out",
                             "--data_path", f"{inside}/train.json"]
    assert config["Labels"]["org.ftimg.run.job"] == "lora-sft"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["NCCL_DEBUG"] == "INFO" and env["OMP_NUM_THREADS"] == "1"
    assert env["HF_TOKEN"] == SENTINEL  # runtime only: the container's env, nowhere else

    out_dir = workdir / "out"
    manifest = json.loads((out_dir / "run.json").read_text())
    assert manifest["status"] == "completed" and manifest["global_step"] == 2
    assert manifest["data"]["train"]["path"] == f"{inside}/train.json"
    owner = int(user.split(":")[0])
    assert {path.stat().st_uid for path in out_dir.rglob("*")} | {out_dir.stat().st_uid} == {owner}
    assert (out_dir / "adapter_model.safetensors").is_file()

    assert SENTINEL not in out + err
    assert tree_contains(out_dir, SENTINEL.encode()) == []
    image = client.api.inspect_image(train_image)
    assert SENTINEL not in json.dumps(image) + json.dumps(client.api.history(train_image))


def test_the_jobs_exit_code_is_ftimgs(client, train_image, workdir, containers, memlock_args):
    name = "ftimg-test-run-fail"
    containers.append(name)
    code, _, err = ftimg("run", "--image", train_image, "--keep", "--name", name, *memlock_args,
                         "lora-sft", "--data_path", "./missing.jsonl", "--output_dir", "out", cwd=workdir)
    state = inspect(client, name)["State"]
    assert state["ExitCode"] != 0
    assert code == state["ExitCode"]
    assert "--data_path ./missing.jsonl: not found on this host" in err


def test_unknown_job_lists_the_images_jobs_and_creates_nothing(client, train_image, workdir, containers):
    before = job_container_names(client)
    code, _, err = ftimg("run", "--image", train_image, "sft", cwd=workdir)
    assert code == 1
    assert "unknown job 'sft'" in err
    for job in image_jobs(client.api.inspect_image(train_image)["Config"]["Labels"], train_image):
        assert job["name"] in err
    assert job_container_names(client) == before


def test_gpus_without_the_nvidia_runtime_is_refused_before_any_container(client, train_image, workdir,
                                                                        containers):
    if "nvidia" in (client.info().get("Runtimes") or {}):
        pytest.skip("this engine has the nvidia runtime")
    before = job_container_names(client)
    code, _, err = ftimg("run", "--image", train_image, "--gpus", "all", "lora-sft", cwd=workdir)
    assert code == 1
    assert "NVIDIA Container Toolkit" in err and "nvidia-container-toolkit" in err
    assert job_container_names(client) == before
    assert not (workdir / "output").exists()


def test_created_container_carries_device_requests_ipc_and_ulimits(client, train_image, tmp_path, containers):
    """What `--gpus device=0,2 --ipc host --ulimit nofile=…` asks the engine for, read back (created, not started)."""
    labels = client.api.inspect_image(train_image)["Config"]["Labels"]
    options = RunOptions(image=train_image, job="lora-sft", gpus="device=0,2", ipc="host",
                         ulimits=["nofile=4096:8192"], name="ftimg-test-run-gpus")
    spec = build_run_spec(options, image_jobs(labels, train_image), {}, str(tmp_path), (1234, 1234), 0,
                          lambda _: None, "x")
    containers.append(spec.name)
    make_output_dirs(spec)
    engine.create_job_container(client, spec)
    host = inspect(client, spec.name)["HostConfig"]
    assert host["DeviceRequests"] == [{"Driver": "", "Count": 0, "DeviceIDs": ["0", "2"],
                                       "Capabilities": [["gpu"]], "Options": {}}]
    assert host["IpcMode"] == "host"
    assert {u["Name"]: (u["Soft"], u["Hard"]) for u in host["Ulimits"]}["nofile"] == (4096, 8192)
    assert inspect(client, spec.name)["Config"]["User"] == "1234:1234"

    all_gpus = build_run_spec(RunOptions(image=train_image, job="lora-sft", gpus="all", name="ftimg-test-run-all"),
                              image_jobs(labels, train_image), {}, str(tmp_path), (1234, 1234), 0,
                              lambda _: None, "x")
    containers.append(all_gpus.name)
    make_output_dirs(all_gpus)
    engine.create_job_container(client, all_gpus)
    requests_ = inspect(client, all_gpus.name)["HostConfig"]["DeviceRequests"]
    assert requests_[0]["Count"] == -1 and requests_[0]["Capabilities"] == [["gpu"]]


class Follow:
    """ftimg as a live subprocess whose output is collected while it runs."""

    def __init__(self, args, cwd, sigint_ignored=False):
        # sigint_ignored: started the way a script's background job or a CI runner starts it.
        ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
        self.process = subprocess.Popen([*FTIMG, *args], cwd=cwd, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, preexec_fn=ignore)
        self.text = ""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.text += line

    def wait_for(self, needle, timeout=300):
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            assert self.process.poll() is None, f"ftimg ended before {needle!r}:\n{self.text[-3000:]}"
            assert time.monotonic() < deadline, f"no {needle!r} after {timeout}s:\n{self.text[-3000:]}"
            time.sleep(0.5)

    def finish(self, timeout=300):
        code = self.process.wait(timeout=timeout)
        self.reader.join(10)
        return code


def test_ctrl_c_stops_the_job_which_saves_a_checkpoint_and_the_container_is_removed(
        client, train_image, workdir, containers, memlock_args):
    name = "ftimg-test-run-sigint"
    containers.append(name)
    run = Follow(["run", "--image", train_image, "--name", name, *memlock_args, "lora-sft",
                  "--max_steps", "2000", "--save_steps", "100000", "--output_dir", "out"], workdir,
                 sigint_ignored=True)
    run.wait_for("'loss'")
    assert client.containers.get(name).status == "running"
    run.process.send_signal(signal.SIGINT)
    code = run.finish()
    assert code == 143, run.text[-3000:]
    assert "stopping " + name in run.text
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(name)
    checkpoints = sorted((workdir / "out").glob("checkpoint-*"))
    assert checkpoints, run.text[-3000:]
    assert (checkpoints[-1] / "trainer_state.json").is_file()
    assert json.loads((workdir / "out" / "run.json").read_text())["status"] == "interrupted"


def test_detach_ps_logs_stop(client, train_image, workdir, containers, memlock_args):
    name = "ftimg-test-run-detached"
    containers.append(name)
    code, out, err = ftimg("run", "--image", train_image, "-d", "--name", name, *memlock_args, "lora-sft",
                           "--max_steps", "2000", "--save_steps", "100000", "--output_dir", "out", cwd=workdir)
    assert code == 0, err
    assert out.strip() == name
    code, out, _ = ftimg("ps")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith(name))
    assert "lora-sft" in row and "Up" in row and str(workdir / "out") in row
    deadline = time.monotonic() + 300
    while True:
        code, logs, _ = ftimg("logs", name)
        assert code == 0
        if "'loss'" in logs:
            break
        assert time.monotonic() < deadline, logs[-2000:]
        time.sleep(2)
    assert "ftimg_jobs" in logs
    code, out, err = ftimg("stop", "--rm", name)
    assert code == 0, err
    assert f"{name}: stopped, exit code 143, removed" in out
    assert name not in job_container_names(client)
    assert list((workdir / "out").glob("checkpoint-*"))
    code, _, err = ftimg("logs", name)
    assert code == 1 and f"no ftimg job container named {name}" in err
