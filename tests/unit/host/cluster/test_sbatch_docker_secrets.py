"""The docker runtime's node function hands each secret to the container as a read-only file, run for real in
bash with a stand-in `docker` that records what it was given: the value is in no argument and no --env, the
file sits in a private directory, and the directory is gone once the container runs."""

import os
import subprocess
import textwrap

import pytest

from ftimg.cluster.runtimes import runtime_step
from ftimg.job.runspec import RunOptions, build_run_spec

TOKEN = "hf_FAKEftimgNodeToken_0123456789"
JOBS = [{"name": "lora-sft", "path_flags": ["output_dir"]}]
# Stands in for the node's docker CLI: `run` records its arguments and what the mounted secret holds, then
# reports the container running (as `docker inspect` would) for a moment before it ends.
FAKE_DOCKER = textwrap.dedent("""\
    #!/bin/bash
    case "$1" in
      inspect) [ -f "$STATE/running" ] && echo true || echo false ;;
      run)
        printf '%s\\n' "$@" > "$STATE/args"
        for arg in "$@"; do
          case "$arg" in type=bind,source=*) source="${arg#type=bind,source=}"; source="${source%%,*}" ;; esac
        done
        cat "$source" > "$STATE/value"
        stat -c %a "$source" > "$STATE/file_mode"
        stat -c %a "$(dirname "$source")" > "$STATE/dir_mode"
        dirname "$source" > "$STATE/dir"
        touch "$STATE/running"
        sleep 2 ;;
    esac
    exit 0
""")


def node_function(secrets):
    run = RunOptions(image="ftimg/train:x", job="lora-sft", job_args=["--output_dir", "/shared/out"])
    spec = build_run_spec(run, JOBS, {}, "/shared", (os.getuid(), os.getgid()), 64 << 30, lambda _: None, "t")
    step = runtime_step("docker", spec, None, "ftimg/train:x", 0, [["NNODES"]], "host", "0", secrets)
    return "\n".join(step.setup)


@pytest.fixture
def node(tmp_path):
    bin_dir, state, runtime = tmp_path / "bin", tmp_path / "state", tmp_path / "runtime"
    for directory in (bin_dir, state, runtime):
        directory.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STATE": str(state), "XDG_RUNTIME_DIR": str(runtime),
           "SLURM_JOB_ID": "7", "SLURMD_NODENAME": "n0"}

    def run(extra_env):
        script = node_function(["HF_TOKEN"]) + "\nftimg_node\n"
        return subprocess.run(["bash", "-c", script], env={**env, **extra_env}, capture_output=True, text=True,
                              timeout=30)
    return run, state, runtime


def test_a_secret_reaches_the_container_as_a_private_read_only_file_and_leaves_the_node(node):
    run, state, runtime = node
    result = run({"HF_TOKEN": TOKEN})
    assert result.returncode == 0, result.stderr
    args = (state / "args").read_text().splitlines()
    assert not any(TOKEN in arg for arg in args)
    assert not any(arg == "HF_TOKEN" or arg.startswith("HF_TOKEN=") for arg in args)  # no --env HF_TOKEN
    assert any(arg.endswith("target=/run/secrets/HF_TOKEN,readonly") for arg in args)
    assert (state / "value").read_text() == TOKEN
    assert (state / "file_mode").read_text().strip() == "444"
    assert (state / "dir_mode").read_text().strip() == "700"
    assert (state / "dir").read_text().startswith(str(runtime))
    # The watcher removed the directory once the container ran (the run waits for it: it holds the output).
    assert list(runtime.iterdir()) == []


def test_a_secret_missing_on_the_node_stops_the_step_with_its_name_and_leaves_nothing(node):
    run, state, runtime = node
    result = run({})
    assert result.returncode != 0
    assert "HF_TOKEN: not set on this node: export it where you submit" in result.stderr
    assert not (state / "args").exists() and list(runtime.iterdir()) == []


def test_the_docker_step_writes_no_secret_into_its_environment_flags():
    text = node_function(["HF_TOKEN"])
    assert "--env HF_TOKEN" not in text and "/run/secrets/HF_TOKEN" in text


@pytest.fixture
def prepare(monkeypatch):
    """prepare_sbatch with the image's job list and facts given here instead of by a Docker engine."""
    from ftimg.cluster import submit

    def prepare_run(_client, options, host_env):
        return build_run_spec(options, JOBS, host_env, "/shared", (os.getuid(), os.getgid()), 64 << 30,
                              lambda _: None, "t")

    monkeypatch.setattr(submit, "prepare_run", prepare_run)
    monkeypatch.setattr(submit.engine, "inspect_image",
                        lambda _client, _image: {"Config": {"Entrypoint": ["python", "-m", "ftimg_jobs"]}})
    monkeypatch.setattr(submit.shutil, "which", lambda _name: None)

    def run(job_args, secrets=(), env=()):
        from ftimg.cluster.sbatch import SbatchOptions

        run_options = RunOptions(image="ftimg/train:x", job="lora-sft", job_args=list(job_args),
                                 secrets=list(secrets))
        options = SbatchOptions(job_name="j", log_dir="/shared/logs", runtime="docker", passed_env=list(env))
        return submit.prepare_sbatch(None, run_options, options, check_cluster=False)
    return run


def test_sbatch_takes_the_run_specs_secrets_and_mounts_them_as_files(prepare):
    plan = prepare(["--hub_token", TOKEN, "--output_dir", "/shared/out"], secrets=["MY_KEY"], env=["WANDB_PROJECT"])
    assert TOKEN not in plan.script and "--hub_token" not in plan.script
    assert "source=$secrets/HF_TOKEN,target=/run/secrets/HF_TOKEN" in plan.script
    assert "source=$secrets/MY_KEY,target=/run/secrets/MY_KEY" in plan.script
    assert "--env WANDB_PROJECT" in plan.script and "--env HF_TOKEN" not in plan.script
    assert any("--hub_token: its value is not written into the batch script" in note for note in plan.notes)


def test_sbatch_refuses_a_secret_also_given_with_e_and_a_secret_file(prepare):
    from ftimg.errors import FtimgError

    with pytest.raises(FtimgError, match="MY_KEY is given with -e and with --secret MY_KEY: give one"):
        prepare(["--output_dir", "/shared/out"], secrets=["MY_KEY"], env=["MY_KEY"])
    with pytest.raises(FtimgError, match="HF_TOKEN is given with -e and with --hub_token"):
        prepare(["--hub_token", TOKEN], env=["HF_TOKEN"])
    with pytest.raises(FtimgError, match="--secret NAME=FILE: a batch script takes names only"):
        prepare([], secrets=["MY_KEY=key.txt"])


def test_sbatch_e_of_a_secret_says_what_docker_inspect_shows(prepare):
    plan = prepare([], env=["WANDB_API_KEY"])
    assert any(note.startswith("-e WANDB_API_KEY: the value is stored") for note in plan.notes)
