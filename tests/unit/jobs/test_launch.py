"""The torchrun command built for 1..N GPUs, CPU workers and several nodes (pure function)."""

import pytest

from ftimg_jobs.errors import JobError
from ftimg_jobs.launch import BACKEND_ENV, build_launch_command

ARGV = ["lora-sft", "--lora_r", "8"]


def test_one_process_runs_in_place():
    assert build_launch_command(ARGV, {}, gpu_count=1) is None
    assert build_launch_command(ARGV, {}, gpu_count=0) is None


def test_already_launched_never_relaunches():
    assert build_launch_command(ARGV, {"LOCAL_RANK": "0"}, gpu_count=8) is None


def test_one_process_per_gpu_standalone():
    cmd, env = build_launch_command(ARGV, {"PATH": "/bin"}, gpu_count=4, python="py")
    assert cmd == ["py", "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=4", "--standalone",
                   "-m", "ftimg_jobs", "lora-sft", "--lora_r", "8"]
    assert env[BACKEND_ENV] == "nccl" and env["PATH"] == "/bin" and env["OMP_NUM_THREADS"] == "1"


def test_cpu_processes_use_gloo():
    cmd, env = build_launch_command(ARGV, {"NPROC_PER_NODE": "2"}, gpu_count=0, python="py")
    assert "--nproc_per_node=2" in cmd
    assert env[BACKEND_ENV] == "gloo"


def test_nproc_per_node_overrides_gpu_count():
    cmd, _ = build_launch_command(ARGV, {"NPROC_PER_NODE": "2"}, gpu_count=8, python="py")
    assert "--nproc_per_node=2" in cmd


def test_multi_node_uses_rendezvous_address():
    env = {"NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29600"}
    cmd, _ = build_launch_command(ARGV, env, gpu_count=8, python="py")
    assert cmd[3:9] == ["--nnodes=2", "--nproc_per_node=8", "--node_rank=1", "--master_addr=10.0.0.1",
                        "--master_port=29600", "-m"]
    assert "--standalone" not in cmd


def test_single_node_with_master_port_uses_it():
    cmd, _ = build_launch_command(ARGV, {"MASTER_PORT": "29700"}, gpu_count=2, python="py")
    assert "--master_port=29700" in cmd and "--master_addr=127.0.0.1" in cmd and "--standalone" not in cmd


def test_user_env_is_not_mutated():
    env = {"NPROC_PER_NODE": "2"}
    build_launch_command(ARGV, env, gpu_count=0)
    assert env == {"NPROC_PER_NODE": "2"}


@pytest.mark.parametrize("env, message", [
    ({"NNODES": "2"}, "needs MASTER_ADDR"),
    ({"NNODES": "two"}, "NNODES='two' is not an integer"),
    ({"NPROC_PER_NODE": "0"}, "NPROC_PER_NODE=0 must be at least 1"),
    ({"NNODES": "2", "NODE_RANK": "2", "MASTER_ADDR": "h"}, "NODE_RANK=2 must be below NNODES=2"),
])
def test_bad_launch_env_is_named(env, message):
    with pytest.raises(JobError, match=message):
        build_launch_command(ARGV, env, gpu_count=1)


# A secret flag given to a job run directly (not through ftimg run) with several processes.
TOKEN = "hf_FAKEftimgLaunchToken_0123456789"


def test_the_dispatcher_moves_secret_flags_into_the_environment_before_launching(monkeypatch, capsys):
    import ftimg_jobs.__main__ as dispatcher

    launched = []
    monkeypatch.setattr(dispatcher, "visible_gpu_count", lambda: 0)
    monkeypatch.setattr(dispatcher, "run_launch", lambda cmd, env: launched.append((cmd, env)) or 0)
    monkeypatch.setattr(dispatcher, "export_secret_files", lambda environ: [])
    monkeypatch.setattr(dispatcher.os, "environ", {"NPROC_PER_NODE": "2", "HF_TOKEN": "ambient"})
    assert dispatcher.main(["lora-sft", "--hub_token", TOKEN, "--lora_r", "8", f"--token={TOKEN}x"]) == 0
    (cmd, env), = launched
    assert cmd[-3:] == ["lora-sft", "--lora_r", "8"] and not any(TOKEN in token for token in cmd)
    assert env["HF_TOKEN"] == TOKEN + "x"  # the last flag wins, as a parser would take it
    err = capsys.readouterr().err
    assert f"--hub_token ({len(TOKEN)} characters) moved into HF_TOKEN" in err and TOKEN not in err


def test_the_launch_echo_masks_any_secret_it_is_given(capsys, monkeypatch):
    import subprocess

    from ftimg_jobs.launch import run_launch
    from ftimg_jobs.secrets import masked_command

    assert masked_command(["py", "-m", "ftimg_jobs", "x", "--hub_token", TOKEN, f"--api-key={TOKEN}",
                           "--eos_token_id", "2"]) == \
        "py -m ftimg_jobs x --hub_token *** --api-key=*** --eos_token_id 2"

    class Done:
        def __init__(self, cmd, env):
            pass

        def wait(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", Done)
    assert run_launch(["py", "--hub_token", TOKEN], {}) == 0
    assert TOKEN not in capsys.readouterr().err
