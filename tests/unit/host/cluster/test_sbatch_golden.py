"""The batch scripts `ftimg sbatch` writes, as exact text (golden files), and valid bash.

The pyxis and apptainer scripts cannot run on the test cluster (enroot, pyxis and apptainer are not
in Debian), so their text is pinned here; flag spellings follow pyxis' `srun --help`
(--container-image=[USER@][REGISTRY#]IMAGE[:TAG]|PATH, --container-mounts=SRC:DST[:FLAGS],...,
--container-workdir, --no-container-entrypoint) and apptainer's `exec` (--nv, --pwd,
--bind src[:dest[:opts]]). Regenerate after an intended change with FTIMG_UPDATE_GOLDEN=1.
"""

import os
import subprocess
from pathlib import Path

import pytest

from ftimg.cluster.runtimes import ImageFacts
from ftimg.cluster.sbatch import SbatchOptions, batch_script
from ftimg.job.runspec import Mount, RunSpec

GOLDEN = Path(__file__).parent / "golden"
IMAGE = "registry.example.com/team/train:cu121-torch2.1"
FACTS = ImageFacts({
    "PATH": "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "VIRTUAL_ENV": "/opt/venv",
    "HOME": "/home/ftimg",
    "PYTHONUNBUFFERED": "1",
    "FTIMG_PROFILE": "cu121-torch2.1",
    "FTIMG_DEFAULT_MODEL": "/opt/ftimg/models/tiny-llama",
    "PYTHONPATH": "/opt/ftimg/entrypoints",
}, ("python", "-m", "ftimg_jobs"))


def spec(job="qlora-sft"):
    return RunSpec(
        image=IMAGE, name="unused", job=job,
        command=[job, "--data_path", "/mnt/host/shared/data/train.jsonl", "--max_steps", "1000",
                 "--output_dir", "/mnt/host/shared/out/qlora"],
        mounts=[Mount("/shared/data/train.jsonl", "/mnt/host/shared/data/train.jsonl", True),
                Mount("/shared/out/qlora", "/mnt/host/shared/out/qlora", False),
                Mount("/shared/hf", "/mnt/hf-cache", False)],
        gpus=None, ipc_mode=None, shm_size=16 << 30,
        ulimits={"memlock": (-1, -1), "stack": (67108864, 67108864)}, user="1234:1234",
        environment={"HF_HOME": "/mnt/hf-cache"},
        labels={"org.ftimg.run.job": job, "org.ftimg.run.image": IMAGE, "org.ftimg.run.output": "/shared/out/qlora"},
        network=None, stop_timeout=300, create_dirs=["/shared/out/qlora", "/shared/hf"])


CASES = {
    "pyxis": (SbatchOptions(job_name="ftimg-qlora-sft", log_dir="/shared/logs", nodes=4, gpus_per_node=8,
                            runtime="pyxis", partition="gpu", time="1-00:00:00", account="llm", qos="high",
                            exclusive=True, extras=["--mem=0"], passed_env=["HF_TOKEN"]),
              "registry.example.com#team/train:cu121-torch2.1"),
    "apptainer": (SbatchOptions(job_name="ftimg-qlora-sft", log_dir="/shared/logs", nodes=2, gpus_per_node=4,
                                runtime="apptainer", time="12:00:00", signal_grace=600, passed_env=["HF_TOKEN"]),
                  "/shared/images/train.sif"),
    "docker": (SbatchOptions(job_name="ftimg-qlora-sft", log_dir="/shared/logs", nodes=2, gpus_per_node=8,
                             runtime="docker", partition="gpu", requeue=False, passed_env=["WANDB_PROJECT"],
                             secrets=["HF_TOKEN"]),
               IMAGE),
}


@pytest.mark.parametrize("runtime", sorted(CASES))
def test_script_matches_its_golden_file(runtime):
    options, node_image = CASES[runtime]
    text = batch_script(spec(), FACTS, options, node_image)
    golden = GOLDEN / f"sbatch-{runtime}.sh"
    if os.environ.get("FTIMG_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), f"{golden.name} differs; FTIMG_UPDATE_GOLDEN=1 rewrites it after a review"


@pytest.mark.parametrize("runtime", sorted(CASES))
def test_golden_scripts_are_valid_bash(runtime):
    result = subprocess.run(["bash", "-n", str(GOLDEN / f"sbatch-{runtime}.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
