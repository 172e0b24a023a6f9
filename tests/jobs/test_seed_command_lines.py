"""The seeds' command lines run as users typed them (GPU-only parts swapped for CPU, 2 steps)."""

import json

import pytest
from job_helpers import explain, read_run, write_jsonl
from seed_command_lines import SEEDS_DIR, command_lines

pytestmark = pytest.mark.docker

ALPACA = [{"instruction": f"Say the number {n}.", "input": "", "output": f"{n}"} for n in range(12)]


def seed_line(seed: str, contains: str):
    if not SEEDS_DIR.is_dir():
        pytest.skip(f"no seeds at {SEEDS_DIR} (the shared/ folder beside the repository)")
    return next(line for line in command_lines() if line.seed == seed and contains in line.tokens)


def job_flags(line, replace: dict, drop=()) -> list:
    """The line's flags (launcher's and script's), values replaced by name, ``drop``ped ones left out."""
    argv = []
    for name, value in line.flags():
        if name in drop or name.startswith(tuple(prefix.rstrip("*") for prefix in drop if prefix.endswith("*"))):
            continue
        value = replace.get(name, value)
        argv += [f"--{name}"] + ([] if value is None else [str(value)])
    return argv


def test_every_seed_flag_is_accepted_or_refused_with_its_replacement(jobs, tmp_path):
    if not SEEDS_DIR.is_dir():
        pytest.skip(f"no seeds at {SEEDS_DIR} (the shared/ folder beside the repository)")
    flags = {}
    for line in command_lines():
        for name, value in line.flags():
            flags.setdefault(name, value)
    argv = [token for name, value in flags.items() for token in [f"--{name}", *([value] if value else [])]]
    result = jobs.run("lora-sft", *argv, cwd=tmp_path, module="ftimg_jobs.explain_flags", timeout=300)
    lines = result.stdout.splitlines()
    assert len(lines) == len(flags), explain(result)
    assert not [line for line in lines if line.startswith("UNKNOWN")], explain(result)
    for line in lines:
        if line.startswith("REFUSED"):
            assert "--" in line.partition(":")[2] or "`" in line or "drop" in line, line


def test_seed_003_trains_with_its_own_flags(jobs, tmp_path):
    line = seed_line("003", "--use_deepspeed")
    write_jsonl(tmp_path / "data.jsonl", ALPACA)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "stale.txt").write_text("from an earlier run")
    values = {"train_data": "./data.jsonl", "max_num_samples": 10, "num_train_epochs": 1,
              "gradient_accumulation_steps": 1, "gradient_checkpointing": "true", "lora_r": 4, "lora_alpha": 8,
              "auto_find_batch_size": "false", "per_device_train_batch_size": 2, "per_device_eval_batch_size": 2,
              "use_flash_attention": "true", "use_qlora": "false"}
    # As the seed says for DDP: without --use_deepspeed/--deepspeed (DeepSpeed needs GPUs), with --use_ddp.
    argv = job_flags(line, values, drop=("use_deepspeed", "deepspeed", "model_id", "mlfoundry_*"))
    result = jobs.run("lora-sft", *argv, "--use_ddp", "true", "--max_steps", "2", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, explain(result)
    assert "emptied ./model (--cleanup_output_dir_on_start)" in result.stderr
    assert not (tmp_path / "model" / "stale.txt").exists()
    assert "9 training sequences, 1 eval" in result.stderr, explain(result)  # first 10 records, 10% held out
    assert "loss curve: model/loss_curve.png" in result.stderr, explain(result)
    run = read_run(tmp_path / "model")
    assert run["args"]["lora_r"] == 4 and run["args"]["val_set_size"] == 0.1


def test_seed_003_mlfoundry_flags_are_refused_naming_report_to(jobs, tmp_path):
    line = seed_line("003", "--use_deepspeed")
    argv = [token for name, value in line.flags() if name.startswith("mlfoundry")
            for token in (f"--{name}", value)]
    result = jobs.run("lora-sft", *argv, cwd=tmp_path, timeout=300)
    assert result.returncode == 2, explain(result)
    assert result.stderr.count("has no meaning in an ftimg job") == 5, explain(result)
    assert "--report_to" in result.stderr and "Traceback" not in result.stderr


def test_seed_004_tokenize_and_train_lines_run_as_one_job(jobs, tmp_path):
    train = seed_line("004", "--max_steps")
    tokenize = seed_line("004", "--skip_overlength")
    (tmp_path / "data").mkdir()
    write_jsonl(tmp_path / "data" / "alpaca_data.jsonl", ALPACA)
    # ftimg tokenizes in the training job: the tokenize line's flags go to it, except --save_path.
    argv = (job_flags(train, {"dataset_path": "data/alpaca_data.jsonl", "max_steps": 2}, drop=("config_file",))
            + job_flags(tokenize, {}, drop=("save_path", "dataset_path")))
    result = jobs.run("lora-sft", *argv, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, explain(result)
    run = read_run(tmp_path / "output")
    assert run["args"]["lora_r"] == 8 and run["args"]["model_max_length"] == 200
    refused = jobs.run("lora-sft", *job_flags(tokenize, {}), cwd=tmp_path, timeout=300)
    assert refused.returncode == 2 and "--save_path has no meaning" in refused.stderr, explain(refused)
    assert "--data_path" in refused.stderr


def test_an_error_names_the_path_the_user_typed(jobs, tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"prompt": "a", "completion": "b"}\n{"prompt": \n')
    path_map = json.dumps({str(tmp_path / "bad.jsonl"): "./my data/bad.jsonl"})
    result = jobs.run("lora-sft", "--data_path", str(tmp_path / "bad.jsonl"), cwd=tmp_path,
                      env={"FTIMG_PATH_MAP": path_map}, timeout=300)
    assert result.returncode == 2, explain(result)
    assert "./my data/bad.jsonl:2" in result.stderr and str(tmp_path) not in result.stderr, explain(result)
