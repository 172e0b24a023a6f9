"""The jobs natively on an NVIDIA GPU (no Docker there): SFT in its three modes with
DeepSpeed ZeRO-2, QLoRA classification and batch inference, on a small Llama-shaped
model (~60M parameters, random weights from a fixed seed, the embedded tokenizer).

    PYTHONPATH=entrypoints python -m pytest -m gpu tests/gpu -v

Each training run must lower its loss and record the GPU and its peak memory in run.json.
"""

import json

import pytest
from gpu_jobs import run_job as run_gpu_job
from gpu_jobs import save_small_llama
from project_paths import ENTRYPOINTS

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

STEPS = "60"


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    return save_small_llama(tmp_path_factory.mktemp("small-llama"), layers=8)


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory):
    source = json.loads((ENTRYPOINTS / "data/sft/alpaca_zh_en.json").read_text(encoding="utf-8"))
    path = tmp_path_factory.mktemp("data") / "repeated.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in source[:8] * 16), encoding="utf-8")
    return path


def run_job(job, output_dir, *flags):
    run = run_gpu_job(job, output_dir, *flags)
    assert run["device"]["type"] == "cuda" and run["device"]["gpu_name"]
    assert run["peak_gpu_memory_bytes"] > 0
    return run


def assert_learned(run):
    metrics = run["metrics"]
    assert metrics["final_logged_loss"] < 0.5 * metrics["first_logged_loss"], metrics


@pytest.mark.parametrize("job", ["qlora-sft", "lora-sft", "full-sft"])
def test_sft_with_deepspeed_zero2_learns_on_gpu(job, small_model, sft_data, tmp_path):
    run = run_job(job, tmp_path / job, "--model_name_or_path", str(small_model), "--data_path", str(sft_data),
                  "--deepspeed", "zero2", "--bf16", "True", "--max_steps", STEPS, "--logging_steps", "5",
                  "--per_device_train_batch_size", "8", "--model_max_length", "256",
                  "--learning_rate", "1e-4" if job == "full-sft" else "2e-3")
    assert run["global_step"] == int(STEPS)
    assert_learned(run)


def test_qlora_cls_on_gpu(small_model, tmp_path):
    data = ENTRYPOINTS / "data/cls/sentiment_zh_en.jsonl"
    run = run_job("qlora-cls", tmp_path / "cls", "--model_name_or_path", str(small_model), "--data_path", str(data),
                  "--bf16", "True", "--num_train_epochs", "20", "--logging_steps", "5", "--learning_rate", "2e-3",
                  "--per_device_train_batch_size", "8")
    assert_learned(run)
    assert "eval_accuracy" in json.dumps(run["metrics"]) or "accuracy" in json.dumps(run["metrics"])


def test_infer_on_gpu(small_model, tmp_path):
    output = tmp_path / "infer" / "predictions.jsonl"
    run_job("infer", tmp_path / "infer", "--model_name_or_path", str(small_model),
            "--output_path", str(output), "--max_new_tokens", "32", "--batch_size", "8")
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    prompts = (ENTRYPOINTS / "data/prompts.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(str(r["id"]) for r in records) == sorted({str(r["id"]) for r in records})
    assert len(records) == len(prompts)
