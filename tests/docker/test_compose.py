"""Compose files from `ftimg compose` (and the shipped ones) are accepted by docker-compose, and a
2-node job (two containers on a compose network, CPU, gloo) trains to the end with identical weights."""

import hashlib
import json
import os
import secrets
import subprocess

import pytest
import yaml
from tracked import ftimg, memlock_args  # noqa: F401

from ftimg.job.runspec import run_user

pytestmark = pytest.mark.docker

COMPOSE = ["docker-compose"]


def compose(*args, timeout=120):
    return subprocess.run([*COMPOSE, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["single-node.yml", "multi-node.yml"])
def test_shipped_compose_files_are_valid(project_root, name, tmp_path):
    result = subprocess.run([*COMPOSE, "-f", str(project_root / "compose" / name), "config", "-q"],
                            capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "DATA": str(tmp_path / "d.jsonl"), "OUTPUT": str(tmp_path),
                                 "MASTER_ADDR": "10.0.0.1"})
    assert result.returncode == 0, result.stderr


def test_generated_file_is_valid_for_gpus_and_host_network(train_image, tmp_path):
    path = tmp_path / "gpus.yml"
    code, _, err = ftimg("compose", "--image", train_image, "qlora-sft", "--nodes", "2", "--gpus-per-node", "8",
                         "--master-addr", "10.0.0.1", "-e", "HF_TOKEN", "-o", path, "--max_steps", "5",
                         cwd=tmp_path)
    assert code == 0, err
    result = compose("-f", path, "config")
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)["services"]["node1"]
    assert resolved["network_mode"] == "host"
    assert resolved["deploy"]["resources"]["reservations"]["devices"][0]["count"] == 8
    assert resolved["environment"]["NODE_RANK"] == "1" and resolved["environment"]["MASTER_ADDR"] == "10.0.0.1"


def test_two_nodes_train_to_the_end_with_identical_weights(client, train_image, tmp_path, memlock_args):
    out0, out1 = tmp_path / "node0", tmp_path / "node1"
    path = tmp_path / "two-nodes.yml"
    code, _, err = ftimg("compose", "--image", train_image, "lora-sft", "--nodes", "2", *memlock_args,
                         "-o", path, "--max_steps", "5", "--save_on_each_node", "True", "--output_dir", out0,
                         cwd=tmp_path)
    assert code == 0, err
    # Separate hosts have separate disks; on one host node1 saves its own copy to a second directory.
    model = yaml.safe_load(path.read_text())
    for volume in model["services"]["node1"]["volumes"]:
        if volume["source"] == str(out0):
            volume["source"] = str(out1)
    path.write_text(yaml.safe_dump(model, sort_keys=False))
    uid, _, gid = run_user(None, (os.getuid(), os.getgid()), os.environ).partition(":")
    out1.mkdir()
    os.chown(out1, int(uid), int(gid))

    project = f"ftimgtest{secrets.token_hex(3)}"
    try:
        up = compose("-p", project, "-f", path, "up", "--no-color", timeout=1200)
        ids = compose("-p", project, "-f", path, "ps", "-q").stdout.split()
        assert len(ids) == 2, up.stdout[-3000:] + up.stderr[-3000:]
        codes = {client.api.inspect_container(i)["Name"]: client.api.inspect_container(i)["State"]["ExitCode"]
                 for i in ids}
        assert set(codes.values()) == {0}, f"{codes}\n{up.stdout[-5000:]}"
    finally:
        compose("-p", project, "-f", path, "down", "-v", "--remove-orphans")
    assert not client.networks.list(names=[f"{project}_default"])

    manifest = json.loads((out0 / "run.json").read_text())
    assert manifest["status"] == "completed" and manifest["global_step"] == 5
    assert manifest["world_size"] == 2
    assert manifest["env"]["NNODES"] == "2"
    weights0, weights1 = out0 / "adapter_model.safetensors", out1 / "adapter_model.safetensors"
    assert weights0.is_file() and weights1.is_file()
    assert sha256(weights0) == sha256(weights1)
