"""The infer job end to end on the embedded tiny model, on CPU: outputs, determinism,
kill-and-resume exactly-once, two-process data parallelism, and bad-input errors."""

import json
import signal
import time
from pathlib import Path

import pytest

from job_helpers import explain, read_run

pytestmark = pytest.mark.docker

SAMPLE_PROMPTS = Path(__file__).resolve().parents[2] / "entrypoints" / "data" / "prompts.jsonl"
OUTPUT_FIELDS = {"id", "prompt", "generated_text", "num_generated_tokens", "finish_reason"}


def write_prompts(path, count):
    """`count` prompts in every input format, Chinese included; every third one without an id."""
    shapes = [
        lambda n: {"prompt": f"Story {n}: once upon a time"},
        lambda n: {"messages": [{"role": "user", "content": f"第{n}个问题：天空为什么是蓝色的？"}]},
        lambda n: {"instruction": "Translate to English.", "input": f"我有{n}只猫。"},
        lambda n: {"conversations": [{"from": "human", "value": f"Count to {n}" + " please" * (n % 5)}]},
    ]
    with open(path, "w", encoding="utf-8") as handle:
        for n in range(count):
            record = shapes[n % len(shapes)](n)
            if n % 3:
                record["id"] = f"q{n}"
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def expected_ids(count):
    return [f"q{n}" if n % 3 else n for n in range(count)]


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def run_infer(jobs, *flags, cwd, env=None):
    return jobs.run("infer", *map(str, flags), cwd=cwd, env=env)


def infer(jobs, cwd, prompts, output, *flags, env=None):
    """Run infer on the embedded tiny model (greedy, short) and return the output records."""
    result = run_infer(jobs, "--input_path", prompts, "--output_path", output, "--max_new_tokens", 12,
                       "--batch_size", 3, *flags, cwd=cwd, env=env)
    assert result.returncode == 0, explain(result)
    return read_jsonl(output)


def test_every_id_once_with_all_fields_and_greedy_is_deterministic(jobs, tmp_path):
    prompts = write_prompts(tmp_path / "prompts.jsonl", 10)
    first = infer(jobs, tmp_path, prompts, tmp_path / "a" / "out.jsonl")
    second = infer(jobs, tmp_path, prompts, tmp_path / "b" / "out.jsonl")
    assert [record["id"] for record in first] == expected_ids(10)
    for record in first:
        assert set(record) == OUTPUT_FIELDS
        assert record["finish_reason"] in ("eos", "length")
        assert 1 <= record["num_generated_tokens"] <= 12
        assert (record["finish_reason"] == "length") == (record["num_generated_tokens"] == 12)
    assert "天空为什么是蓝色的" in first[1]["prompt"] and "<|assistant|>" in first[1]["prompt"]
    assert first == second
    manifest = read_run(tmp_path / "a")
    assert manifest["job"] == "infer" and manifest["status"] == "completed"
    assert manifest["metrics"]["generated_records"] == 10
    assert manifest["metrics"]["generated_tokens"] == sum(record["num_generated_tokens"] for record in first)
    assert manifest["metrics"]["tokens_per_second"] > 0
    assert manifest["flash4_kernel_cache"].endswith("flash_attention_cute_dsl")
    assert not (tmp_path / "a" / "out.jsonl.parts").exists()


def test_inference_starts_without_importing_the_training_libraries(jobs, tmp_path):
    """Start-up counts in an inference run's wall time: transformers' TrainingArguments pulls in peft (about
    two seconds of imports), and generation without an adapter needs neither."""
    prompts = write_prompts(tmp_path / "prompts.jsonl", 2)
    result = run_infer(jobs, "--input_path", prompts, "--output_path", tmp_path / "out.jsonl", "--max_new_tokens", 2,
                       cwd=tmp_path, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, explain(result)
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" in imported and "transformers" in imported  # the profile really was taken
    assert not imported & {"peft", "transformers.training_args", "transformers.trainer", "datasets"}


def test_runs_with_no_arguments_on_the_embedded_model_and_sample_prompts(jobs, tmp_path):
    result = run_infer(jobs, cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    written = read_jsonl(tmp_path / "output" / "infer" / "predictions.jsonl")
    samples = SAMPLE_PROMPTS.read_text(encoding="utf-8").splitlines()
    assert [record["id"] for record in written] == [json.loads(line)["id"] for line in samples]
    assert read_run(tmp_path / "output" / "infer")["metrics"]["generated_records"] == len(samples)


def part_records(output):
    parts = Path(str(output) + ".parts")
    return [record for path in sorted(parts.glob("rank-*.jsonl")) for record in read_jsonl(path)]


def test_killed_run_resumes_with_every_id_exactly_once(jobs, tmp_path):
    prompts = write_prompts(tmp_path / "prompts.jsonl", 40)
    output = tmp_path / "out.jsonl"
    part = Path(str(output) + ".parts") / "rank-0.jsonl"
    flags = ["--input_path", prompts, "--output_path", output, "--max_new_tokens", 32, "--batch_size", 1]
    process = jobs.start("infer", *map(str, flags), cwd=tmp_path)
    deadline = time.time() + 300
    while time.time() < deadline and process.popen.poll() is None:
        if part.exists() and part.read_text(encoding="utf-8").count("\n") >= 3:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not output.exists(), "the run finished before it could be killed; make it longer"
    before_kill = {record["id"]: record for record in part_records(output)}
    assert 3 <= len(before_kill) < 40
    # What a kill in the middle of a write leaves behind.
    with open(part, "a", encoding="utf-8") as handle:
        handle.write('{"id": "q1", "prompt": "torn')

    resumed = infer(jobs, tmp_path, prompts, output, "--max_new_tokens", 32, "--batch_size", 1)
    assert [record["id"] for record in resumed] == expected_ids(40)
    for record in resumed:
        if record["id"] in before_kill:
            assert record == before_kill[record["id"]]
    manifest = read_run(tmp_path)
    assert manifest["metrics"]["resumed_records"] == len(before_kill)
    assert manifest["metrics"]["generated_records"] == 40 - len(before_kill)


def test_two_processes_share_the_prompts_and_write_each_id_once(jobs, tmp_path):
    prompts = write_prompts(tmp_path / "prompts.jsonl", 9)
    written = infer(jobs, tmp_path, prompts, tmp_path / "out.jsonl", env={"NPROC_PER_NODE": "2"})
    assert [record["id"] for record in written] == expected_ids(9)
    manifest = read_run(tmp_path)
    assert manifest["world_size"] == 2
    assert manifest["metrics"]["generated_records"] == 9


@pytest.mark.parametrize("lines, message", [
    (['{"prompt": "ok"}', '{"prompt": "broken"'], "prompts.jsonl:2: malformed JSON line"),
    (['{"id": 1, "prompt": "a"}', '{"id": 1, "prompt": "b"}'], "prompts.jsonl:2: duplicate id 1"),
    (['{"id": 1, "text": "no prompt here"}'], "prompts.jsonl:1: no prompt field"),
    ([], "prompts.jsonl has no records"),
])
def test_bad_input_fails_naming_file_and_line(jobs, tmp_path, lines, message):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    result = run_infer(jobs, "--input_path", prompts, "--output_path", tmp_path / "out.jsonl", cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_bad_generation_flags_are_reported_together(jobs, tmp_path):
    prompts = write_prompts(tmp_path / "prompts.jsonl", 2)
    result = run_infer(jobs, "--input_path", prompts, "--output_path", tmp_path / "out.jsonl", "--do_sample", "True",
                       "--top_p", 1.5, "--temperature", 0, "--repetition_penalty", -1, cwd=tmp_path)
    assert result.returncode != 0
    for flag in ("--top_p must be in (0, 1], got 1.5", "--temperature must be above 0",
                 "--repetition_penalty must be above 0"):
        assert flag in result.stderr, explain(result)


def test_static_engine_on_a_cpu_says_why_and_auto_falls_back(jobs, tmp_path):
    prompts = write_prompts(tmp_path / "prompts.jsonl", 4)
    refused = run_infer(jobs, "--input_path", prompts, "--output_path", tmp_path / "s" / "out.jsonl",
                        "--engine", "static", "--max_new_tokens", 4, cwd=tmp_path)
    assert refused.returncode != 0
    assert "--engine static cannot run here" in refused.stderr and "--engine eager" in refused.stderr
    plain = infer(jobs, tmp_path, prompts, tmp_path / "a" / "out.jsonl", "--repetition_penalty", 1.2)
    run = read_run(tmp_path / "a")
    assert run["engine"]["name"] == "eager" and "static engine cannot run here" in run["engine"]["reason"]
    # A stop string the model produces: an ASCII character of its output (the tiny model writes random bytes).
    stop = next(c for r in plain for c in r["generated_text"] if c.isascii() and c.isalnum())
    stopped = infer(jobs, tmp_path, prompts, tmp_path / "b" / "out.jsonl", "--stop", stop,
                    "--repetition_penalty", 1.2)
    for before, after in zip(plain, stopped):
        text = before["generated_text"]
        assert after["generated_text"] == (text[:text.index(stop)] if stop in text else text)
        assert after["finish_reason"] == ("stop" if stop in text else before["finish_reason"])


def test_a_changed_system_prompt_is_refused_instead_of_mixing_two_renderings(jobs, tmp_path):
    prompts = write_prompts(tmp_path / "prompts.jsonl", 4)
    output = tmp_path / "out.jsonl"
    infer(jobs, tmp_path, prompts, output)
    before = output.read_bytes()
    changed = run_infer(jobs, "--input_path", prompts, "--output_path", output, "--max_new_tokens", 12,
                        "--batch_size", 3, "--system_prompt", "Answer in French.", cwd=tmp_path)
    assert changed.returncode == 2, explain(changed)
    assert "prompts_sha256" in changed.stderr and "Traceback" not in changed.stderr, explain(changed)
    assert output.read_bytes() == before
