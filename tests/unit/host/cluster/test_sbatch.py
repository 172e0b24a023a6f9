"""The batch script's rules: options checked all at once, Slurm's time formats, the rendezvous from Slurm
through the compose contract, requeue on USR1, one log per node, and the CLI refusing bad input early."""

import pytest
from click.testing import CliRunner

from ftimg.cli import main
from ftimg.cluster.compose import rendezvous_environment
from ftimg.cluster.runtimes import ImageFacts
from ftimg.cluster.sbatch import SbatchOptions, batch_script, check_options, managed_option, time_limit_seconds
from ftimg.cluster.submit import docker_only_options
from ftimg.errors import FtimgError
from ftimg.job.runspec import RunOptions, build_run_spec

JOBS = [{"name": "lora-sft", "path_flags": ["model_name_or_path", "data_path", "output_dir"]}]
FILES = {"/shared/data.jsonl": "file"}
FACTS = ImageFacts({"PATH": "/opt/venv/bin:/usr/bin:/bin", "HOME": "/home/ftimg"}, ("python", "-m", "ftimg_jobs"))


def spec(*job_args):
    options = RunOptions(image="ftimg/train:x", job="lora-sft", job_args=list(job_args))
    return build_run_spec(options, JOBS, {}, "/shared", (1234, 1234), 64 << 30, FILES.get, "sbatch")


def options(**changes):
    values = {"job_name": "ftimg-lora-sft", "log_dir": "/shared/logs", "runtime": "docker", "nodes": 2}
    return SbatchOptions(**{**values, **changes})


def script(*job_args, **changes):
    return batch_script(spec(*job_args), FACTS, options(**changes), "ftimg/train:x")


@pytest.mark.parametrize("text, seconds", [("30", 1800), ("10:30", 630), ("2:00:00", 7200), ("1-00", 86400),
                                           ("1-2:30", 95400), ("1-00:00:10", 86410), ("UNLIMITED", None)])
def test_slurm_time_formats(text, seconds):
    assert time_limit_seconds(text) == seconds


def test_a_bad_time_names_the_formats():
    with pytest.raises(FtimgError, match=r"--time 2h: expected minutes, MM:SS, HH:MM:SS"):
        time_limit_seconds("2h")


def test_every_bad_option_is_reported_at_once():
    with pytest.raises(FtimgError) as error:
        check_options(options(runtime="podman", nodes=0, master_port=70000, time="5", signal_grace=300,
                              extras=["--nodes=4", "mem=0"], job_name="my job", passed_env=["HF_TOKEN=abc"]))
    message = str(error.value)
    for expected in ("--runtime podman: unknown runtime; choose one of pyxis, apptainer, docker",
                     "--nodes 0: need at least one node", "--master-port 70000: not a TCP port",
                     "--time 5 is not longer than --signal-grace 300s",
                     "--sbatch --nodes=4: ftimg writes this one itself; use ftimg's --nodes",
                     "--sbatch 'mem=0': expected one sbatch option", "--job-name 'my job': no spaces",
                     "--env HF_TOKEN=abc: the script passes variables by name only"):
        assert expected in message


@pytest.mark.parametrize("extra, instead", [("--partition=gpu", "--partition"), ("-p gpu", "--partition"),
                                            ("-N4", "--nodes"), ("--output=x.log", "--log-dir"),
                                            ("--signal=USR2@60", "--signal-grace"), ("--mem=0", None),
                                            ("--constraint=a100", None), ("-C a100", None)])
def test_options_ftimg_writes_itself_are_not_taken_as_extras(extra, instead):
    assert managed_option(extra) == instead


def test_network_is_a_docker_runtime_option():
    with pytest.raises(FtimgError, match="only the docker runtime starts containers on a network"):
        check_options(options(runtime="pyxis", network="container:{node}"))


def test_shm_ipc_and_ulimits_belong_to_the_docker_runtime():
    given = RunOptions(image="x", job="lora-sft", ipc="host", ulimits=["nofile=1024"])
    assert docker_only_options(given) == ["--ipc", "--ulimit"]
    assert docker_only_options(RunOptions(image="x", job="lora-sft")) == []


def test_rendezvous_comes_from_slurm_through_the_compose_contract():
    text = script()
    contract = rendezvous_environment("$SLURM_NNODES", "$SLURM_NODEID",
                                      '$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)', 29500, 1)
    exported = " ".join(f'{name}="{value}"' for name, value in contract.items() if name != "NODE_RANK")
    assert f"export {exported}\n" in text
    assert 'export NODE_RANK="$SLURM_NODEID"' in text
    assert "--env NNODES --env NODE_RANK --env MASTER_ADDR --env MASTER_PORT --env NPROC_PER_NODE" in text


def test_the_script_makes_the_output_directories_before_any_node_mounts_them():
    text = script("--output_dir", "out/run1")
    assert "\nmkdir -p /shared/out/run1\n" in text
    assert text.index("mkdir -p") < text.index("srun ")


def test_gpus_per_node_set_the_processes_per_node_and_the_allocation():
    text = script(gpus_per_node=8)
    assert "#SBATCH --gpus-per-node=8\n" in text and 'NPROC_PER_NODE="8"' in text
    assert "--gpus-per-node=8 \\" in text
    assert "#SBATCH --gpus-per-node" not in script()


def test_requeue_on_usr1_before_the_time_limit_and_logs_appended_per_node():
    text = script(time="2:00:00", signal_grace=600)
    assert "#SBATCH --requeue\n#SBATCH --signal=B:USR1@600\n" in text
    assert "trap on_time_limit USR1" in text and 'scancel --signal=TERM "$SLURM_JOB_ID"' in text
    assert 'scontrol requeue "$SLURM_JOB_ID"' in text
    assert "#SBATCH --output=/shared/logs/%x-%j.out\n#SBATCH --open-mode=append\n" in text
    assert "--output=/shared/logs/%x-%j-%N.log --open-mode=append" in text
    assert "--immediate=120" in text
    assert 'scontrol requeue "$SLURM_JOB_ID"' not in script(requeue=False)
    assert "#SBATCH --no-requeue" in script(requeue=False)


def test_extras_and_resources_become_directives():
    text = script(partition="gpu", account="llm", qos="high", exclusive=True, extras=["--mem=0", "-C a100"])
    for line in ("--partition=gpu", "--account=llm", "--qos=high", "--exclusive", "--mem=0", "-C a100"):
        assert f"#SBATCH {line}\n" in text


def test_unknown_runtime_is_refused_before_anything_else():
    result = CliRunner().invoke(main, ["sbatch", "--runtime", "podman", "lora-sft"])
    assert result.exit_code == 2
    assert "'podman' is not one of 'pyxis', 'apptainer', 'docker'" in result.output


def test_bad_options_fail_before_the_engine_is_asked(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    result = CliRunner().invoke(main, ["sbatch", "lora-sft", "--image", "x", "--nodes", "0",
                                       "--sbatch=--time=5", "--max_steps", "5"])
    assert result.exit_code == 1
    assert "--nodes 0: need at least one node" in result.output and "use ftimg's --time" in result.output
    assert "cannot reach the Docker engine" not in result.output
