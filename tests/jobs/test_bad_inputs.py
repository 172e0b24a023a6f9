"""Every bad input stops the job with a non-zero exit and a message naming the file, line or flag."""

import shutil

import pytest
from job_helpers import explain, write_jsonl

pytestmark = pytest.mark.docker


def run_failing(jobs, tmp_path, *argv):
    result = jobs.run(*argv, cwd=tmp_path, timeout=300)
    assert result.returncode != 0, explain(result)
    assert "Traceback" not in result.stderr, explain(result)
    return result.stderr


def test_malformed_jsonl_line(jobs, tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "c", \n')
    stderr = run_failing(jobs, tmp_path, "lora-sft", "--data_path", "bad.jsonl")
    assert "bad.jsonl:2: malformed JSON line" in stderr


def test_unknown_format_names_keys_and_supported_formats(jobs, tmp_path):
    write_jsonl(tmp_path / "qa.jsonl", [{"question": "q", "answer": "a"}])
    stderr = run_failing(jobs, tmp_path, "lora-sft", "--data_path", "qa.jsonl")
    assert "qa.jsonl:1: unknown data format; keys seen: answer, question" in stderr
    assert "alpaca" in stderr and "sharegpt" in stderr and "prompt/completion" in stderr


def test_missing_field_names_record(jobs, tmp_path):
    write_jsonl(tmp_path / "m.jsonl", [{"instruction": "a", "output": "b"}, {"instruction": "c"}])
    stderr = run_failing(jobs, tmp_path, "full-sft", "--data_path", "m.jsonl")
    assert "m.jsonl:2: record 2 is missing field 'output'" in stderr


def test_empty_file(jobs, tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    stderr = run_failing(jobs, tmp_path, "lora-cls", "--data_path", "empty.jsonl")
    assert "empty.jsonl: file is empty" in stderr


def test_mixed_label_types(jobs, tmp_path):
    write_jsonl(tmp_path / "mixed.jsonl", [{"text": "a", "label": "pos"}, {"text": "b", "label": 0},
                                          {"text": "c", "label": "neg"}])
    stderr = run_failing(jobs, tmp_path, "lora-cls", "--data_path", "mixed.jsonl", "--val_set_size", "0")
    assert "labels have mixed types" in stderr and "mixed.jsonl:2" in stderr


def test_missing_deepspeed_file(jobs, tmp_path):
    stderr = run_failing(jobs, tmp_path, "full-sft", "--deepspeed", "ds_config_zero9.json")
    assert "--deepspeed ds_config_zero9.json: no such file" in stderr and "zero2_offload" in stderr


def test_unknown_flag_and_yaml_key(jobs, tmp_path):
    (tmp_path / "job.yaml").write_text("lora_alhpa: 16\n")
    stderr = run_failing(jobs, tmp_path, "lora-sft", "job.yaml", "--lora_rnk", "8")
    assert "'--lora_rnk'" in stderr and "'lora_alhpa' (did you mean 'lora_alpha'?)" in stderr


def test_unknown_job_lists_the_jobs(jobs, tmp_path):
    stderr = run_failing(jobs, tmp_path, "qlora-stf")
    assert "unknown job 'qlora-stf'" in stderr and "qlora-sft" in stderr and "merge" in stderr


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="QLoRA runs where a GPU is visible")
def test_qlora_without_gpu_suggests_lora(jobs, tmp_path):
    stderr = run_failing(jobs, tmp_path, "qlora-sft")
    assert "--q_lora True asks for 4-bit weights, which need a CUDA GPU" in stderr and "use lora-sft" in stderr
    stderr = run_failing(jobs, tmp_path, "lora-sft", "--q_lora", "True")
    assert "--q_lora True asks for 4-bit weights" in stderr and "drop --q_lora True" in stderr
