"""The pure compose model: one service per node, rendezvous on node0, GPUs reserved, same limits as `ftimg run`."""

import pytest
import yaml

from ftimg.cluster.compose import compose_model, dumps
from ftimg.errors import FtimgError
from ftimg.job.runspec import RunOptions, build_run_spec

JOBS = [{"name": "lora-sft", "path_flags": ["model_name_or_path", "data_path", "output_dir"]}]
FILES = {"/p/data.jsonl": "file"}


def spec(*job_args, **options):
    opts = RunOptions(image="ftimg/train:x", job="lora-sft", job_args=list(job_args), **options)
    return build_run_spec(opts, JOBS, {}, "/p", (1234, 1234), 64 << 30, FILES.get, "compose")


def test_one_service_per_node_with_torchrun_rendezvous_on_node0():
    model = compose_model(spec("--data_path", "data.jsonl", "--max_steps", "5"), nodes=3, gpus_per_node=0)
    assert list(model["services"]) == ["node0", "node1", "node2"]
    for rank, service in enumerate(model["services"].values()):
        env = dict(item.split("=", 1) for item in service["environment"])
        assert env["NNODES"] == "3" and env["NODE_RANK"] == str(rank)
        assert env["MASTER_ADDR"] == "node0" and env["MASTER_PORT"] == "29500"
        assert env["NPROC_PER_NODE"] == "1"
        assert env["NCCL_SOCKET_IFNAME"].startswith("${NCCL_SOCKET_IFNAME:-")
        assert {"NCCL_DEBUG", "NCCL_IB_DISABLE"} <= set(env)
        assert service["hostname"] == f"node{rank}" and "network_mode" not in service
        assert service["command"] == ["lora-sft", "--data_path", "/mnt/host/p/data.jsonl", "--max_steps", "5",
                                      "--output_dir", "/mnt/host/p/output/lora-sft"]
        assert "deploy" not in service


def test_gpus_are_reserved_and_shm_ulimits_init_user_match_ftimg_run():
    service = compose_model(spec(), nodes=1, gpus_per_node=8)["services"]["node0"]
    assert service["deploy"] == {"resources": {"reservations": {"devices": [
        {"driver": "nvidia", "count": 8, "capabilities": ["gpu"]}]}}}
    assert "NPROC_PER_NODE=8" in service["environment"]
    assert service["shm_size"] == "16g"
    assert service["ulimits"] == {"memlock": -1, "stack": 67108864}
    assert service["init"] is True and service["user"] == "1234:1234"
    assert service["volumes"] == [{"type": "bind", "source": "/p/output/lora-sft",
                                   "target": "/mnt/host/p/output/lora-sft", "read_only": False}]


def test_separate_hosts_use_the_host_network_and_the_given_master():
    model = compose_model(spec(ipc="host"), nodes=2, gpus_per_node=4, master_addr="10.0.0.1", master_port=29400)
    for service in model["services"].values():
        assert service["network_mode"] == "host" and "hostname" not in service
        assert "MASTER_ADDR=10.0.0.1" in service["environment"] and "MASTER_PORT=29400" in service["environment"]
        assert service["ipc"] == "host" and "shm_size" not in service


def test_secrets_are_passed_by_name_only_and_dollars_are_escaped():
    model = compose_model(spec("--run_name", "cost$5", env=["HF_TOKEN"]), nodes=1, gpus_per_node=0,
                          passed_env=["HF_TOKEN"])
    service = model["services"]["node0"]
    assert "HF_TOKEN" in service["environment"]
    assert not any(item.startswith("HF_TOKEN=") for item in service["environment"])
    assert "cost$$5" in service["command"]


def test_bad_counts_are_errors():
    with pytest.raises(FtimgError, match="--nodes 0"):
        compose_model(spec(), nodes=0, gpus_per_node=0)
    with pytest.raises(FtimgError, match="--gpus-per-node -1"):
        compose_model(spec(), nodes=1, gpus_per_node=-1)


def test_dumps_is_yaml_without_a_version_key_and_with_a_comment_header():
    text = dumps(compose_model(spec(), nodes=2, gpus_per_node=1), "line one\nline two")
    assert text.startswith("# line one\n# line two\nservices:\n")
    document = yaml.safe_load(text)
    assert "version" not in document and set(document["services"]) == {"node0", "node1"}
