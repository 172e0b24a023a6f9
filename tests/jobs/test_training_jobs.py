"""Every training job runs end to end on the tiny model and writes its outputs and run.json."""

import json
import shutil

import pytest
from job_helpers import SMALL, explain, read_run

from conftest import ENTRYPOINTS

pytestmark = pytest.mark.docker

SAMPLE_SFT = sorted((ENTRYPOINTS / "data" / "sft").iterdir())
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_common_outputs(output_dir, job, steps):
    run = read_run(output_dir)
    assert run["job"] == job and run["status"] == "completed" and run["exit_code"] == 0
    assert run["global_step"] == steps
    assert run["world_size"] == 1
    assert run["device"]["type"] in ("cpu", "cuda")
    # A padding-free run names its per-example variant after the kernel: "sdpa, one causal call per example ...".
    assert run["attention"]["implementation"].split(",")[0] in ("flash_attention_4", "flash_attention_2", "sdpa",
                                                                "eager")
    assert run["versions"]["torch"] and run["versions"]["transformers"] and run["versions"]["peft"]
    assert set(run["image"]) == {"profile", "lock_hash"}
    assert len(run["data"]["train"]["sha256"]) == 64
    assert run["metrics"]["train_loss"] > 0
    assert run["wall_time_s"] > 0
    # FlashAttention-4's kernels would be kept for the next process (the images' default stack has no flash-attn-4).
    assert run["speed"]["flash4_kernel_cache"].endswith("flash_attention_cute_dsl")
    if run["device"]["type"] == "cpu":
        assert run["peak_gpu_memory_bytes"] is None
    assert (output_dir / "loss_curve.png").read_bytes()[:8] == PNG_MAGIC
    assert list((output_dir / "runs").rglob("events.out.tfevents.*")), "no TensorBoard log"
    assert (output_dir / f"checkpoint-{steps}" / "trainer_state.json").is_file()
    assert (output_dir / "tokenizer_config.json").is_file()
    return run


def assert_weights(output_dir, lora: bool):
    if lora:
        assert (output_dir / "adapter_model.safetensors").is_file()
        assert json.loads((output_dir / "adapter_config.json").read_text())["r"] > 0
    else:
        assert (output_dir / "model.safetensors").is_file() and (output_dir / "config.json").is_file()


@pytest.mark.parametrize("job", ["lora-sft", "lora-cls"])
def test_job_runs_with_no_arguments(jobs, tmp_path, job):
    result = jobs.run(job, cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    output_dir = tmp_path / "output" / job
    run = read_run(output_dir)
    assert run["status"] == "completed" and run["global_step"] > 0
    assert run["data"]["train"]["path"].endswith(("alpaca_zh_en.json", "sentiment_zh_en.jsonl"))
    assert_weights(output_dir, lora=True)


@pytest.mark.parametrize("sample", SAMPLE_SFT, ids=lambda path: path.name)
def test_lora_sft_reads_every_sample_format(jobs, tmp_path, sample):
    shutil.copy(sample, tmp_path / sample.name)
    result = jobs.run("lora-sft", "--data_path", sample.name, "--output_dir", "out", *SMALL, cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    run = assert_common_outputs(tmp_path / "out", "lora-sft", steps=2)
    expected = sample.name.split("_zh")[0].replace("sharegpt", "sharegpt")
    assert run["data_format"] == expected
    assert run["args"]["lora_r"] == 8 and run["args"]["use_lora"] is True and run["args"]["q_lora"] is False
    assert_weights(tmp_path / "out", lora=True)


def test_full_sft_with_packing_and_eval(jobs, tmp_path):
    result = jobs.run("full-sft", "--output_dir", "out", "--packing", "True", "--val_set_size", "0.25",
                      "--learning_rate", "1e-3", *SMALL, cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    run = assert_common_outputs(tmp_path / "out", "full-sft", steps=2)
    assert run["args"]["use_lora"] is False and run["args"]["packing"] is True
    assert run["parameters"]["trainable"] == run["parameters"]["total"]
    assert run["metrics"]["eval_loss"] > 0
    assert_weights(tmp_path / "out", lora=False)


@pytest.mark.parametrize("job", ["lora-cls", "full-cls"])
def test_cls_jobs_write_label_map_metrics_and_predictions(jobs, tmp_path, job):
    result = jobs.run(job, "--output_dir", "out", "--val_set_size", "0.25", *SMALL, cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    output_dir = tmp_path / "out"
    run = assert_common_outputs(output_dir, job, steps=2)
    label_map = json.loads((output_dir / "label_map.json").read_text(encoding="utf-8"))
    config = json.loads((output_dir / "config.json").read_text(encoding="utf-8"))
    assert label_map["labels"] == ["negative", "positive"]
    assert config["id2label"] == label_map["id2label"] == {"0": "negative", "1": "positive"}
    assert config["label2id"] == label_map["label2id"] and config["num_labels"] == 2 if "num_labels" in config \
        else len(config["id2label"]) == 2
    assert 0 <= run["metrics"]["eval_accuracy"] <= 1 and 0 <= run["metrics"]["eval_macro_f1"] <= 1
    # The tiny model is a causal decoder: its rows are right-padded and attention takes no mask.
    assert run["speed"]["batches"]["attention_mask"] is False
    predictions = [json.loads(line) for line in (output_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 6  # 25% of the 24 sample records
    assert all(row["prediction"] in label_map["labels"] for row in predictions)
    assert_weights(output_dir, lora=job.startswith("lora"))


def test_regression_from_float_labels(jobs, tmp_path):
    shutil.copy(ENTRYPOINTS / "data" / "cls" / "rating_regression_zh_en.jsonl", tmp_path / "ratings.jsonl")
    result = jobs.run("lora-cls", "--data_path", "ratings.jsonl", "--output_dir", "out", "--val_set_size", "0.2",
                      *SMALL, cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    run = read_run(tmp_path / "out")
    assert run["problem_type"] == "regression" and run["label_map"]["num_labels"] == 1
    assert run["metrics"]["eval_mse"] >= 0 and -1 <= run["metrics"]["eval_pearson"] <= 1
    predictions = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 4 and all(isinstance(row["prediction"], float) for row in predictions)


def test_seed_flags_run_as_written(jobs, tmp_path):
    """Seed 000's flags: on CPU bf16 is ignored and --flash_attn falls back to SDPA, with the reason recorded."""
    result = jobs.run("lora-sft", "--lora_r", "8", "--lora_alpha", "16", "--lora_dropout", "0.05", "--bf16", "True",
                      "--gradient_checkpointing", "--flash_attn", "--evaluation_strategy", "no",
                      "--dispatch_batches", "True", "--tf32", "False", "--weight_decay", "0.",
                      "--warmup_ratio", "0.03", "--lr_scheduler_type", "cosine", "--output_dir", "out", *SMALL,
                      cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    run = read_run(tmp_path / "out")
    assert run["args"]["gradient_checkpointing"] is True and run["args"]["flash_attn"] is True
    if run["device"]["type"] == "cpu":
        assert run["attention"]["implementation"].split(",")[0] == "sdpa"
        assert "unavailable" in run["attention"]["reason"]
        assert run["args"]["bf16"] is False and "fp32" in run["precision_note"]


def test_yaml_config_with_cli_override(jobs, tmp_path):
    (tmp_path / "job.yaml").write_text("lora_r: 4\nlora_alpha: 8\nlora_target_modules: [q_proj, v_proj]\n"
                                       "output_dir: from-yaml\nmax_steps: 2\nmodel_max_length: 128\n")
    result = jobs.run("lora-sft", "job.yaml", "--lora_alpha", "32", cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    run = read_run(tmp_path / "from-yaml")
    assert (run["args"]["lora_r"], run["args"]["lora_alpha"]) == (4, 32)
    adapter = json.loads((tmp_path / "from-yaml" / "adapter_config.json").read_text())
    assert sorted(adapter["target_modules"]) == ["q_proj", "v_proj"]


def test_secrets_never_reach_run_json(jobs, tmp_path):
    result = jobs.run("lora-sft", "--output_dir", "out", "--hub_token", "hf_supersecret", *SMALL,
                      env={"HF_TOKEN": "hf_envsecret", "FTIMG_PROFILE": "test-profile"}, cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    text = (tmp_path / "out" / "run.json").read_text()
    assert "hf_supersecret" not in text and "hf_envsecret" not in text and "hub_token" not in text
    assert read_run(tmp_path / "out")["image"]["profile"] == "test-profile"


def test_two_cpu_processes_train_with_gloo(jobs, tmp_path):
    result = jobs.run("lora-sft", "--output_dir", "out", *SMALL, env={"NPROC_PER_NODE": "2"}, cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    run = read_run(tmp_path / "out")
    assert run["world_size"] == 2 and run["global_step"] == 2
    assert run["env"]["FTIMG_DIST_BACKEND"] in ("gloo", "nccl")
