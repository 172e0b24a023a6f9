"""The merge job on a LoRA adapter trained for a few lora-sft steps on the tiny model:
the merged model computes base + adapter (same logits, same greedy generations)."""

import json

import pytest

from job_helpers import explain, read_run

pytestmark = pytest.mark.docker

# Runs in the job's Python (the image's stack, as module compare_logits): largest |logit difference|
# of merged vs base + adapter, and of base vs base + adapter (the adapter must matter).
COMPARE_LOGITS = """
import json, sys, torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
adapter_dir, merged_dir = sys.argv[1:]
base_dir = json.load(open(adapter_dir + "/adapter_config.json"))["base_model_name_or_path"]
tokenizer = AutoTokenizer.from_pretrained(merged_dir)
batch = tokenizer(["北京是哪个国家的首都？", "Opposite of cold?"], return_tensors="pt", padding=True)
load = lambda path: AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
with torch.no_grad():
    base = load(base_dir)(**batch).logits
    adapted = PeftModel.from_pretrained(load(base_dir), adapter_dir).eval()(**batch).logits
    merged = load(merged_dir)(**batch).logits
print((merged - adapted).abs().max().item(), (base - adapted).abs().max().item())
"""


def succeed(jobs, *argv, cwd, module="ftimg_jobs"):
    result = jobs.run(*map(str, argv), cwd=cwd, module=module)
    assert result.returncode == 0, explain(result)
    return result


@pytest.fixture(scope="module")
def adapter(jobs, tmp_path_factory):
    """A LoRA adapter after a few lora-sft steps at a high learning rate, on the embedded model and sample data."""
    root = tmp_path_factory.mktemp("merge")
    succeed(jobs, "lora-sft", "--output_dir", root / "adapter", "--max_steps", 3, "--per_device_train_batch_size", 2,
            "--model_max_length", 128, "--learning_rate", 0.05, "--report_to", "none", cwd=root)
    return root / "adapter"


def test_merged_logits_equal_base_plus_adapter(jobs, adapter, tmp_path):
    merged = tmp_path / "merged"
    succeed(jobs, "merge", "--adapter_name_or_path", adapter, "--output_dir", merged, cwd=tmp_path)
    assert (merged / "model.safetensors").is_file()
    assert (merged / "tokenizer.json").is_file()
    assert not (merged / "adapter_config.json").exists()
    manifest = read_run(merged)
    base = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))["base_model_name_or_path"]
    assert manifest["job"] == "merge" and manifest["model"] == base

    (tmp_path / "compare_logits.py").write_text(COMPARE_LOGITS, encoding="utf-8")
    compared = succeed(jobs, str(adapter), str(merged), cwd=tmp_path, module="compare_logits")
    merged_vs_adapted, base_vs_adapted = map(float, compared.stdout.split()[-2:])
    assert base_vs_adapted > 1e-3, "the adapter changes nothing, so this test could not fail"
    assert merged_vs_adapted < 1e-4


def test_infer_with_adapter_equals_infer_with_merged_model(jobs, adapter, tmp_path):
    merged = tmp_path / "merged"
    succeed(jobs, "merge", "--adapter_name_or_path", adapter, "--output_dir", merged, cwd=tmp_path)
    # float32 on a GPU too: bf16 would round the merged weights, so near-tied logits could pick other tokens.
    common = ["--max_new_tokens", 16, "--batch_size", 4, "--torch_dtype", "float32"]
    succeed(jobs, "infer", "--adapter_name_or_path", adapter, "--output_path", tmp_path / "adapter.jsonl", *common,
            cwd=tmp_path)
    succeed(jobs, "infer", "--model_name_or_path", merged, "--output_path", tmp_path / "merged.jsonl", *common,
            cwd=tmp_path)
    with_adapter = [json.loads(line) for line in (tmp_path / "adapter.jsonl").read_text(encoding="utf-8").splitlines()]
    with_merged = [json.loads(line) for line in (tmp_path / "merged.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(with_adapter) == read_run(tmp_path)["metrics"]["input_records"] > 0
    assert with_adapter == with_merged


def test_merge_needs_an_adapter(jobs, tmp_path):
    result = jobs.run("merge", "--output_dir", str(tmp_path / "merged"), cwd=tmp_path)
    assert result.returncode != 0
    assert "merge needs --adapter_name_or_path" in result.stderr
    result = jobs.run("merge", "--adapter_name_or_path", str(tmp_path), "--output_dir", str(tmp_path / "merged"),
                      cwd=tmp_path)
    assert result.returncode != 0
    assert "has no adapter_config.json" in result.stderr
