"""`ftimg sbatch` on a real Slurm cluster of containers (slurm_cluster.py): a 2-node LoRA job on CPU (gloo)
trains to the end through the docker runtime (the train image run by each node's engine), a job told its
time limit is near checkpoints, is requeued and resumes to the same final step, bad input is refused before
anything is submitted, the pyxis and apptainer scripts pass sbatch's own check, and `ftimg doctor` reports
what the login node and a compute node have."""

import json
import re
import subprocess
import time

import pytest
from slurm_cluster import SlurmCluster
from tracked import containers, ftimg, memlock_args  # noqa: F401

pytestmark = pytest.mark.docker

JOB_TIMEOUT_S = 240
CHECKPOINT_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def cluster(client, profile, train_image, tmp_path_factory):
    """Built, started and idle; everything it created is removed afterwards."""
    cluster = SlurmCluster(client, profile.base_image, tmp_path_factory.mktemp("slurm"))
    try:
        cluster.build()
        cluster.start()
        cluster.wait_until_idle()
        yield cluster
    finally:
        cluster.remove()


def sbatch(cluster, *args):
    """`ftimg sbatch` on the login node, from the shared directory; (exit code, stdout, stderr)."""
    return ftimg("sbatch", *args, env=cluster.login_env(), cwd=cluster.shared, timeout=120)


def docker_job(train_image, memlock_args, output, *job_args):
    return ["lora-sft", "--nodes", "2", "--runtime", "docker", "--network", "container:{node}",
            "--image", train_image, *memlock_args, "--output_dir", output, *job_args, "--submit"]


def node_logs(cluster, job_id):
    logs = sorted((cluster.shared / "slurm-logs").glob(f"ftimg-lora-sft-{job_id}-*.log"))
    return {path.name.rsplit("-", 1)[-1].removesuffix(".log"): path.read_text(errors="replace") for path in logs}


def job_containers_of(cluster, job_id):
    """Job containers of `job_id` still on the engine (the step removes its own)."""
    return [c.name for c in cluster.client.containers.list(all=True, filters={"name": f"-{job_id}-{cluster.prefix}"})]


def test_two_nodes_train_to_the_end_with_the_docker_runtime(cluster, train_image, memlock_args, containers):
    output = cluster.shared / "out-complete"
    code, job_id, err = sbatch(cluster, *docker_job(train_image, memlock_args, output,
                                                    "--max_steps", "4", "--save_steps", "2"))
    assert code == 0, err
    job_id = job_id.strip()
    assert cluster.wait_for_job(job_id, JOB_TIMEOUT_S) == "COMPLETED", cluster.job_logs(job_id)

    manifest = json.loads((output / "run.json").read_text())
    assert manifest["status"] == "completed" and manifest["global_step"] == 4
    assert manifest["world_size"] == 2 and manifest["env"]["NNODES"] == "2"
    assert manifest["env"]["MASTER_ADDR"] == cluster.nodes[0]
    logs = node_logs(cluster, job_id)
    assert sorted(logs) == ["node1", "node2"], logs.keys()
    assert all("ftimg_jobs" in text for text in logs.values()), cluster.job_logs(job_id)
    # The output directory is shared: only the first node writes the adapter and run.json, once.
    assert [name for name, text in logs.items() if f"{output}/run.json" in text] == ["node1"]
    assert [p.name for p in output.glob("adapter_model.safetensors")] == ["adapter_model.safetensors"]
    assert not job_containers_of(cluster, job_id)


def test_near_the_time_limit_the_job_checkpoints_requeues_and_resumes(cluster, train_image, memlock_args,
                                                                     containers):
    output = cluster.shared / "out-requeue"
    code, job_id, err = sbatch(cluster, *docker_job(train_image, memlock_args, output,
                                                    "--max_steps", "150", "--save_steps", "10"))
    assert code == 0, err
    job_id = job_id.strip()
    deadline = time.monotonic() + CHECKPOINT_TIMEOUT_S
    while not (output / "checkpoint-10" / "trainer_state.json").is_file():
        assert time.monotonic() < deadline, f"no checkpoint-10 after {CHECKPOINT_TIMEOUT_S} s:\n" + \
            cluster.job_logs(job_id)
        time.sleep(0.2)
    # What Slurm sends --signal-grace seconds before the time limit (#SBATCH --signal=B:USR1@...).
    cluster.exec("scancel", "--batch", "--signal=USR1", job_id)
    state = cluster.wait_for_job(job_id, JOB_TIMEOUT_S)

    batch_log = (cluster.shared / "slurm-logs" / f"ftimg-lora-sft-{job_id}.out").read_text()
    assert "time limit near: stopping the step at a checkpoint" in batch_log, cluster.job_logs(job_id)
    assert "step ended with exit code 143" in batch_log and "requeueing job" in batch_log
    assert f"job {job_id}, attempt 2," in batch_log and cluster.job_state(job_id)[1] == 1
    resumed, signalled = set(), []
    for name, text in node_logs(cluster, job_id).items():
        # Every rank stops at the same step: on its own SIGTERM, or on another rank's when its own comes later.
        signalled.append("received SIGTERM; saving a checkpoint" in text)
        assert signalled[-1] or "another rank received a stop signal; saving a checkpoint" in text, name
        resumed |= set(re.findall(rf"resuming from \S*{re.escape(str(output))}/checkpoint-(\d+)", text))
    assert any(signalled) and len(resumed) == 1 and 10 <= int(next(iter(resumed))) < 150, cluster.job_logs(job_id)
    assert state == "COMPLETED", cluster.job_logs(job_id)
    manifest = json.loads((output / "run.json").read_text())
    assert manifest["status"] == "completed" and manifest["global_step"] == 150 and manifest["world_size"] == 2
    assert manifest["resumed_from"].endswith(f"/checkpoint-{next(iter(resumed))}")


def test_bad_input_is_refused_before_anything_is_submitted(cluster, train_image):
    cases = [
        (["--nodes", "3", "--runtime", "docker", "--image", train_image],
         "--nodes 3: partition debug has 2 node(s), so the job could never start"),
        (["--gpus-per-node", "1", "--runtime", "docker", "--image", train_image],
         "--gpus-per-node 1: the nodes of partition debug have no GPUs"),
        (["--partition", "gpu", "--runtime", "docker", "--image", train_image], "--partition gpu: no such partition"),
        (["--runtime", "docker", "--image", "ftimg/train:no-such-tag"], "image ftimg/train:no-such-tag is not in"),
        (["--runtime", "pyxis", "--image", train_image], "the nodes cannot read"),
        (["--runtime", "apptainer", "--image", train_image, "--node-image", "gone.sif"],
         "--node-image gone.sif: no such file"),
        (["--runtime", "podman", "--image", train_image], "'podman' is not one of 'pyxis', 'apptainer', 'docker'"),
    ]
    for args, message in cases:
        code, out, err = sbatch(cluster, "lora-sft", *args, "--max_steps", "1", "--submit")
        assert code != 0 and message in err, (args, err)
        assert out == ""
    assert cluster.exec("squeue", "-h", "-t", "PENDING,RUNNING").stdout.strip() == ""


@pytest.mark.parametrize("runtime, node_image", [("pyxis", "train.sqsh"), ("apptainer", "train.sif")])
def test_pyxis_and_apptainer_scripts_pass_sbatchs_own_check(cluster, train_image, runtime, node_image):
    (cluster.shared / node_image).write_bytes(b"")  # stands in for the squashfs or SIF: only its path is used
    script = cluster.shared / f"{runtime}.sbatch"
    code, _, err = sbatch(cluster, "lora-sft", "--nodes", "2", "--runtime", runtime, "--image", train_image,
                          "--node-image", node_image, "--time", "30", "--signal-grace", "120",
                          "--sbatch=--mem=0", "-o", script, "--max_steps", "3")
    assert code == 0, err
    assert f"--node-image {node_image}" not in err
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    check = subprocess.run(["sbatch", "--test-only", script.name], capture_output=True, text=True, cwd=cluster.shared,
                           env=cluster.login_env(), timeout=60)
    assert check.returncode == 0 and "to start at" in check.stderr, check.stderr


def test_doctor_on_the_login_node_reports_slurm_pyxis_apptainer_and_a_nodes_engine(cluster):
    code, out, err = ftimg("doctor", "--probe-node", env=cluster.login_env(), cwd=cluster.shared, timeout=180)
    lines = {line[5:21].strip(): line for line in out.splitlines() if line[:4] in ("ok  ", "warn", "FAIL")}
    assert "slurm-wlm 22.05" in lines["slurm"] and "is UP" in lines["slurm"], out
    assert lines["pyxis"].startswith("warn") and "srun has no --container-image" in lines["pyxis"]
    assert lines["apptainer"].startswith("warn")
    assert lines["compute node"].startswith("ok") and "docker engine 20.10" in lines["compute node"], out
