"""One end-to-end run per data format family on the tiny model: raw text, tool calling, typed parts, a dataset spec."""

import json
import shutil

import pytest
from job_helpers import SMALL, explain, read_run, write_jsonl
from project_paths import SAMPLE_DATA

pytestmark = pytest.mark.docker

NER_SPEC = SAMPLE_DATA / "ner" / "ner_spec.yaml"
WEATHER = {"name": "get_weather", "description": "Weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def train(jobs, tmp_path, *flags):
    result = jobs.run("lora-sft", *SMALL, "--output_dir", "out", *flags, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, explain(result)
    return result


def test_raw_text_trains_every_token_packed(jobs, tmp_path):
    write_jsonl(tmp_path / "corpus.jsonl", [{"text": f"第{i}段。The quick brown fox jumps over the lazy dog. " * 4}
                                            for i in range(8)])
    result = train(jobs, tmp_path, "--data_path", "corpus.jsonl")
    assert "raw text records, so --packing True" in result.stderr + result.stdout
    run = read_run(tmp_path / "out")
    assert run["data_format"] == "text" and run["args"]["packing"] is True


def test_tool_calling_in_sharegpt_and_openai_shapes(jobs, tmp_path):
    call = {"name": "get_weather", "arguments": {"city": "北京"}}
    write_jsonl(tmp_path / "sharegpt.jsonl", [{"tools": json.dumps([WEATHER]), "conversations": [
        {"from": "human", "value": "北京天气怎么样？"}, {"from": "function_call", "value": json.dumps(call)},
        {"from": "observation", "value": "{\"temp\": 21}"}, {"from": "gpt", "value": "北京 21 度。"}]}] * 4)
    write_jsonl(tmp_path / "openai.jsonl", [{"tools": [{"type": "function", "function": WEATHER}], "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "21"},
        {"role": "assistant", "content": "21 °C in Paris."}]}] * 4)
    # The tools block is long in the tiny model's byte-level tokens.
    train(jobs, tmp_path, "--data_path", "sharegpt.jsonl", "--model_max_length", "1024")
    train(jobs, tmp_path, "--data_path", "openai.jsonl", "--output_dir", "out2", "--model_max_length", "1024")
    write_jsonl(tmp_path / "ask.jsonl", [{"id": "w", "tools": [WEATHER],
                                          "messages": [{"role": "user", "content": "Weather in Oslo?"}]}])
    result = jobs.run("infer", "--input_path", "ask.jsonl", "--output_path", "pred/p.jsonl", "--max_new_tokens", "4",
                      cwd=tmp_path, timeout=300)
    assert result.returncode == 0, explain(result)
    prompt = json.loads((tmp_path / "pred" / "p.jsonl").read_text(encoding="utf-8"))["prompt"]
    assert "<tools>" in prompt and "get_weather" in prompt  # the tiny model's template has no tools: text fallback


def test_typed_parts_reasoning_and_turn_weights(jobs, tmp_path):
    write_jsonl(tmp_path / "parts.jsonl", [{"messages": [
        {"role": "system", "content": [{"type": "text", "text": "Think, then answer."}]},
        {"role": "user", "content": [{"type": "text", "value": "2+2?"}]},
        {"role": "assistant", "content": "5", "weight": 0},
        {"role": "user", "content": "Again?"},
        {"role": "assistant", "content": [{"type": "reasoning", "value": "2 and 2 make 4"},
                                          {"type": "text", "value": "4"}], "weight": 1}]}] * 4)
    train(jobs, tmp_path, "--data_path", "parts.jsonl")


def test_ner_spec_trains_and_its_targets_are_the_labels_as_json(jobs, tmp_path):
    # The user's own copy of the shipped example: jobs in the image see only the test's directories.
    shutil.copytree(NER_SPEC.parent, tmp_path / "ner")
    spec = "ner/ner_spec.yaml"
    preview = jobs.run("--dataset_spec", spec, module="ftimg_jobs.data.preview", cwd=tmp_path, timeout=120)
    assert preview.returncode == 0, explain(preview)
    lines = [json.loads(line) for line in preview.stdout.splitlines()]
    labels = [json.loads(line)["label"] for line in
              (NER_SPEC.parent / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [json.loads(line["target"]) for line in lines] == labels
    train(jobs, tmp_path, "--dataset_spec", spec, "--model_max_length", "256")
    run = read_run(tmp_path / "out")
    assert "eval_loss" in json.dumps(run)  # the spec's eval: entry was evaluated
    result = jobs.run("infer", "--dataset_spec", spec, "--input_path", "ner/eval.jsonl",
                      "--adapter_name_or_path", "out", "--output_path", "pred/p.jsonl", "--max_new_tokens", "4",
                      cwd=tmp_path, timeout=300)
    assert result.returncode == 0, explain(result)
    first = json.loads((tmp_path / "pred" / "p.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert "Ner任务提取" in first["prompt"] and "钱三在复旦大学工作。" in first["prompt"]


def test_a_bad_spec_is_refused_naming_file_and_problem(jobs, tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [{"text": "t", "label": {"name": ["x"]}}])
    (tmp_path / "spec.yaml").write_text("data_path: d.jsonl\nformat: alpaca\ncolumns: {prompt: text, response: label}\n",
                                        encoding="utf-8")
    result = jobs.run("lora-sft", "--dataset_spec", "spec.yaml", "--output_dir", "out", cwd=tmp_path, timeout=300)
    assert result.returncode != 0 and "Traceback" not in result.stderr, explain(result)
    assert "d.jsonl:1: record 1 field 'label' must be a string, got dict" in result.stderr
    assert "answer_template" in result.stderr


def test_a_csv_file_trains_through_datasets(jobs, tmp_path):
    rows = "".join(f"复述 {i},repeat {i}\n" for i in range(8))
    (tmp_path / "train.csv").write_text("instruction,output\n" + rows, encoding="utf-8")
    train(jobs, tmp_path, "--data_path", "train.csv")
    run = read_run(tmp_path / "out")
    assert run["data_format"] == "alpaca" and run["global_step"] == 2, run
