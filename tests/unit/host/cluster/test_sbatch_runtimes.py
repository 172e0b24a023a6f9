"""Each runtime's part of the step: where the nodes get the image, the image's environment in pyxis and
apptainer steps, and `ftimg run`'s container settings in docker steps."""

import pytest

from ftimg.cluster.runtimes import (ImageFacts, docker_network, enroot_uri, image_facts, is_registry_ref, node_image,
                                    runtime_step)
from ftimg.errors import FtimgError
from ftimg.job.runspec import Mount, RunOptions, build_run_spec

JOBS = [{"name": "lora-sft", "path_flags": ["model_name_or_path", "data_path", "output_dir"]}]
FILES = {"/shared/data.jsonl": "file", "/shared/train.sqsh": "file", "/shared/train.sif": "file"}
FACTS = ImageFacts({"PATH": "/opt/venv/bin:/usr/bin:/bin", "HOME": "/home/ftimg", "PYTHONPATH": "/opt/e",
                    "FTIMG_PROFILE": "cu121-torch2.1"}, ("python", "-m", "ftimg_jobs"))


def spec(*job_args, **options):
    run = RunOptions(image="ftimg/train:x", job="lora-sft", job_args=list(job_args), **options)
    return build_run_spec(run, JOBS, {}, "/shared", (1234, 1234), 64 << 30, FILES.get, "sbatch")


def step_text(runtime, the_spec, image="ftimg/train:x", gpus=0, network="host"):
    step = runtime_step(runtime, the_spec, FACTS, image, gpus, [["NNODES"], ["HF_TOKEN"]], network,
                        "$SLURM_NODEID")
    return "\n".join([*step.setup, " ".join(step.env_prefix), *step.lines])


@pytest.mark.parametrize("ref, registry", [("registry.example.com/team/train:1", True), ("localhost:5000/t:1", True),
                                           ("localhost/train", True), ("ftimg/train:cu121", False),
                                           ("train:1", False)])
def test_registry_refs_are_told_apart_from_local_names(ref, registry):
    assert is_registry_ref(ref) is registry


@pytest.mark.parametrize("ref, uri", [("registry.example.com/team/train:1", "registry.example.com#team/train:1"),
                                      ("docker://localhost:5000/train:1", "localhost:5000#train:1"),
                                      ("nvcr.io#nvidia/pytorch:24.01", "nvcr.io#nvidia/pytorch:24.01"),
                                      ("ubuntu:22.04", "ubuntu:22.04")])
def test_pyxis_names_the_registry_with_a_hash(ref, uri):
    assert enroot_uri(ref) == uri


def test_where_the_nodes_get_the_image():
    registry = "registry.example.com/team/train:1"
    assert node_image("pyxis", registry, None, "/shared", FILES.get) == "registry.example.com#team/train:1"
    assert node_image("apptainer", registry, None, "/shared", FILES.get) == f"docker://{registry}"
    assert node_image("pyxis", "ftimg/train:x", "train.sqsh", "/shared", FILES.get) == "/shared/train.sqsh"
    assert node_image("apptainer", "ftimg/train:x", "/shared/train.sif", "/", FILES.get) == "/shared/train.sif"
    assert node_image("apptainer", "ftimg/train:x", "oras://r.example.com/t:1", "/", FILES.get) == \
        "oras://r.example.com/t:1"
    assert node_image("docker", "ftimg/train:x", None, "/", FILES.get) == "ftimg/train:x"


def test_a_local_image_cannot_reach_pyxis_nodes_and_the_error_says_how():
    with pytest.raises(FtimgError) as error:
        node_image("pyxis", "ftimg/train:x", None, "/shared", FILES.get)
    assert "ftimg push IMAGE REGISTRY/REPO" in str(error.value)
    assert "enroot import -o /shared/train.sqsh dockerd://ftimg/train:x" in str(error.value)
    with pytest.raises(FtimgError, match="apptainer build /shared/train.sif docker-daemon://ftimg/train:x"):
        node_image("apptainer", "ftimg/train:x", None, "/shared", FILES.get)


def test_a_missing_squashfs_or_sif_is_an_error_naming_the_path():
    with pytest.raises(FtimgError, match=r"--node-image old.sqsh: no such file \(/shared/old.sqsh\)"):
        node_image("pyxis", "ftimg/train:x", "old.sqsh", "/shared", FILES.get)
    with pytest.raises(FtimgError, match="the docker runtime runs --image"):
        node_image("docker", "ftimg/train:x", "/shared/train.sif", "/", FILES.get)


def test_image_facts_come_from_docker_inspect():
    inspect = {"Config": {"Env": ["PATH=/opt/venv/bin:/bin", "X=a=b"], "Entrypoint": ["python", "-m", "ftimg_jobs"]}}
    assert image_facts(inspect, "i") == ImageFacts({"PATH": "/opt/venv/bin:/bin", "X": "a=b"},
                                                    ("python", "-m", "ftimg_jobs"))
    with pytest.raises(FtimgError, match="has no ENTRYPOINT: it is not an ftimg train image"):
        image_facts({"Config": {"Env": []}}, "debian:12")


@pytest.mark.parametrize("runtime", ["pyxis", "apptainer"])
def test_pyxis_and_apptainer_steps_set_the_image_environment_but_not_home(runtime):
    text = step_text(runtime, spec("--data_path", "data.jsonl", hf_cache="/shared/hf"), image="/shared/train.img")
    lines = text.splitlines()
    for assignment in ("PATH=/opt/venv/bin:/usr/bin:/bin", "PYTHONPATH=/opt/e", "FTIMG_PROFILE=cu121-torch2.1",
                       "HF_HOME=/mnt/hf-cache"):
        assert assignment in lines
    assert not any(line.startswith("HOME=") for line in lines)
    assert "-u LOCAL_RANK" in text and 'NODE_RANK="$SLURM_NODEID"' in text
    assert lines[-1] == ("python -m ftimg_jobs lora-sft --data_path /mnt/host/shared/data.jsonl "
                         "--output_dir /mnt/host/shared/output/lora-sft")


def test_pyxis_mounts_workdir_and_gpu_hook():
    text = step_text("pyxis", spec("--data_path", "data.jsonl"), image="r.example.com#t:1", gpus=8)
    assert "'--container-image=r.example.com#t:1'" in text
    assert ("--container-mounts=/shared/data.jsonl:/mnt/host/shared/data.jsonl:ro,"
            "/shared/output/lora-sft:/mnt/host/shared/output/lora-sft") in text
    assert "--container-workdir=/tmp --no-container-entrypoint" in text
    assert "NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility" in text
    assert "NVIDIA_VISIBLE_DEVICES" not in step_text("pyxis", spec(), image="r.example.com#t:1")


def test_apptainer_binds_and_nv_only_with_gpus():
    text = step_text("apptainer", spec("--data_path", "data.jsonl"), image="/shared/train.sif", gpus=4)
    assert "apptainer exec --nv --pwd /tmp" in text
    assert "--bind /shared/data.jsonl:/mnt/host/shared/data.jsonl:ro" in text
    assert "--bind /shared/output/lora-sft:/mnt/host/shared/output/lora-sft" in text
    assert "--nv" not in step_text("apptainer", spec(), image="/shared/train.sif")


def test_docker_step_runs_the_run_spec_with_ftimg_runs_settings():
    text = step_text("docker", spec("--data_path", "data.jsonl", shm_size="8g", ulimits=["nofile=4096"]), gpus=2)
    assert "exec docker run --rm --name \"$name\"" in text
    assert "--init --user 1234:1234 --shm-size 8g --ulimit memlock=-1:-1 --ulimit nofile=4096:4096" in text
    assert "--volume /shared/data.jsonl:/mnt/host/shared/data.jsonl:ro" in text
    assert '--gpus "\\"device=${SLURM_STEP_GPUS:-$SLURM_JOB_GPUS}\\""' in text
    assert "--env NNODES" in text and "--env HF_TOKEN" in text
    assert "--label org.ftimg.run.job=lora-sft" in text
    assert 'timeout 60 docker rm --force "$name"' in text
    assert "export -f ftimg_node" in text and text.splitlines()[-1] == "bash -c ftimg_node"


def test_docker_network_host_name_or_the_node_containers_namespace():
    assert docker_network("host") == "host"
    assert docker_network("container:{node}") == '"container:$SLURMD_NODENAME"'
    with pytest.raises(FtimgError, match="expected host, a Docker network name, or container:{node}"):
        docker_network("a b")


def test_a_path_that_cannot_be_a_bind_mount_is_refused():
    bad = spec()
    bad.mounts.append(Mount("/shared/a,b", "/mnt/host/shared/a,b", True))
    with pytest.raises(FtimgError, match="cannot mount /shared/a,b into a Slurm step"):
        runtime_step("pyxis", bad, FACTS, "x#y", 0, [], "host", "$SLURM_NODEID")
