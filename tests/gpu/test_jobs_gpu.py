"""The jobs natively on an NVIDIA GPU (no Docker there): SFT in its three modes with
DeepSpeed ZeRO-2, QLoRA classification and batch inference, on a small Llama-shaped
model (~60M parameters, random weights from a fixed seed, the embedded tokenizer).

    PYTHONPATH=entrypoints python -m pytest -m gpu tests/gpu -v

Each training run must lower its loss and record the GPU and its peak memory in run.json.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

ENTRYPOINTS = Path(__file__).resolve().parents[2] / "entrypoints"
STEPS = "60"


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    from ftimg_jobs.model.tiny_model import build_tokenizer

    path = tmp_path_factory.mktemp("small-llama")
    tokenizer = build_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=768, num_hidden_layers=8, num_attention_heads=12,
                         num_key_value_heads=4, intermediate_size=2048, max_position_embeddings=2048,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory):
    source = json.loads((ENTRYPOINTS / "data/sft/alpaca_zh_en.json").read_text(encoding="utf-8"))
    path = tmp_path_factory.mktemp("data") / "repeated.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in source[:8] * 16), encoding="utf-8")
    return path


def run_job(job, output_dir, *flags):
    env = dict(os.environ, PYTHONPATH=f"{ENTRYPOINTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    result = subprocess.run([sys.executable, "-m", "ftimg_jobs", job, "--output_dir", str(output_dir), *flags],
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, f"{job} exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    run = json.loads((Path(output_dir) / "run.json").read_text())
    print(f"\n{job}: " + json.dumps({k: run.get(k) for k in ("device", "attention", "global_step", "metrics",
                                                             "wall_time_s", "peak_gpu_memory_bytes")}))
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
    run = run_job("infer", tmp_path / "infer", "--model_name_or_path", str(small_model),
                  "--output_path", str(output), "--max_new_tokens", "32", "--batch_size", "8")
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    prompts = (ENTRYPOINTS / "data/prompts.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(str(r["id"]) for r in records) == sorted({str(r["id"]) for r in records})
    assert len(records) == len(prompts)
