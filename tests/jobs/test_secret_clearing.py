"""A token given to a job in its YAML config or as a flag lives in its environment, in no file it saves."""

from pathlib import Path

import pytest
from job_helpers import SMALL, explain

pytestmark = pytest.mark.docker

CONFIG_TOKEN = "hf_FAKEftimgConfigToken_0123456789abcdef"
FLAG_TOKEN = "hf_FAKEftimgFlagToken_0123456789"


def files_containing(root, needle: bytes) -> list:
    return [str(path) for path in Path(root).rglob("*") if path.is_file() and needle in path.read_bytes()]


def test_a_config_token_moves_into_hf_token_and_out_of_every_checkpoint(jobs, tmp_path):
    (tmp_path / "job.yaml").write_text(f"hub_token: {CONFIG_TOKEN}\nsave_steps: 1\noutput_dir: out\n")
    result = jobs.run("lora-sft", "job.yaml", *SMALL, cwd=tmp_path, env={"HF_TOKEN": ""})
    assert result.returncode == 0, explain(result)
    assert f"hub_token ({len(CONFIG_TOKEN)} characters) moved into HF_TOKEN" in result.stderr
    saved = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("training_args.bin"))
    assert saved == ["checkpoint-1/training_args.bin", "checkpoint-2/training_args.bin", "training_args.bin"]
    assert list((tmp_path / "out").rglob("events.out.tfevents.*")), "TensorBoard hparams were not written"
    assert files_containing(tmp_path / "out", b"hf_FAKEftimg") == []
    assert "hf_FAKEftimg" not in result.stdout + result.stderr


def test_a_token_flag_beats_the_environment_and_is_saved_nowhere(jobs, tmp_path):
    result = jobs.run("lora-sft", "--hub_token", FLAG_TOKEN, "--output_dir", "out", *SMALL, cwd=tmp_path,
                      env={"HF_TOKEN": "hf_FAKEftimgAmbient"})
    assert result.returncode == 0, explain(result)
    assert f"secrets: HF_TOKEN (environment, {len(FLAG_TOKEN)} characters)" in result.stderr
    assert f"--hub_token ({len(FLAG_TOKEN)} characters) moved into HF_TOKEN" in result.stderr
    assert files_containing(tmp_path / "out", b"hf_FAKEftimg") == []


def test_a_token_flag_stays_out_of_the_launch_line_and_the_workers_argv(jobs, tmp_path):
    # Several processes: the dispatcher re-executes the job under torchrun with the argv it was given.
    result = jobs.run("lora-sft", "--hub_token", FLAG_TOKEN, "--output_dir", "out", *SMALL, cwd=tmp_path,
                      env={"HF_TOKEN": "", "NPROC_PER_NODE": "2"})
    assert result.returncode == 0, explain(result)
    assert "ftimg_jobs: launching " in result.stderr and "--hub_token" not in result.stderr.split("launching ")[1]
    assert "hf_FAKEftimg" not in result.stdout + result.stderr
    assert files_containing(tmp_path / "out", b"hf_FAKEftimg") == []
