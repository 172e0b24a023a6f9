"""Runs never mix: one job per output directory, and resume only a checkpoint of the same run."""

import hashlib
import json
import signal
import time

import pytest
from job_helpers import explain, read_run

pytestmark = pytest.mark.docker

FAST = ["--model_max_length", "64", "--per_device_train_batch_size", "2", "--logging_steps", "1"]


def wait_for_file(path, process, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.is_file():
            return
        if process.popen.poll() is not None:
            code, output = process.wait()
            pytest.fail(f"job ended (exit {code}) before {path.name} appeared:\n{output[-4000:]}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {path}")


def checksums(directory) -> dict:
    return {str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.rglob("*")) if path.is_file()}


def test_second_job_into_a_held_directory_fails_at_once_and_the_first_is_unharmed(jobs, tmp_path):
    args = ["lora-sft", "--max_steps", "6", "--save_steps", "3", *FAST]
    first = jobs.start(*args, "--output_dir", "out", cwd=tmp_path)
    lock = tmp_path / "out" / "ftimg-lock.json"
    wait_for_file(lock, first)
    # Frozen while it holds the directory (docker kill --signal=SIGSTOP in the image), so the second
    # job surely meets a live holder however slowly either starts.
    first.send_signal(signal.SIGSTOP)
    try:
        holder = json.loads(lock.read_text())
        started = time.time()
        second = jobs.run(*args, "--output_dir", "out", cwd=tmp_path, timeout=120)
        elapsed = time.time() - started
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 2, explain(second)
    assert f"in use by run {holder['run']}" in second.stderr and f"pid {holder['pid']}" in second.stderr
    assert "another --output_dir" in second.stderr and "Traceback" not in second.stderr
    assert elapsed < 60, f"the second job took {elapsed:.0f} s to refuse"

    code, output = first.wait(timeout=300)
    assert code == 0, output[-4000:]
    lone = jobs.run(*args, "--output_dir", "lone", cwd=tmp_path)
    assert lone.returncode == 0, explain(lone)
    shared, alone = read_run(tmp_path / "out"), read_run(tmp_path / "lone")
    assert shared["global_step"] == alone["global_step"] == 6
    # CPU runs of the same command differ around the 4th decimal (seen run to run alone too).
    assert shared["metrics"]["final_logged_loss"] == pytest.approx(alone["metrics"]["final_logged_loss"], abs=0.01)
    logged_steps = [entry["step"] for entry in json.loads((tmp_path / "out" / "trainer_state.json").read_text())
                    ["log_history"] if "loss" in entry]
    assert logged_steps == [1, 2, 3, 4, 5, 6]  # one run, start to end
    assert shared["resume"]["checkpoint"] is None and not lock.exists()


def test_changed_lora_r_is_refused_untouched_and_a_raised_max_steps_continues(jobs, tmp_path):
    args = ["lora-sft", "--output_dir", "out", "--save_steps", "2", *FAST]
    result = jobs.run(*args, "--max_steps", "4", cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    before = checksums(tmp_path / "out")
    assert "checkpoint-4/ftimg_fingerprint.json" in before

    changed = jobs.run(*args, "--max_steps", "4", "--lora_r", "16", cwd=tmp_path)
    assert changed.returncode == 2, explain(changed)
    error_lines = [line for line in changed.stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and "lora_r 8 → 16" in error_lines[0], changed.stderr[-3000:]
    assert "--overwrite_output_dir" in error_lines[0] and "--resume_from_checkpoint none" not in error_lines[0]
    assert "data:" not in changed.stderr  # stopped before the tokenizer, data or model were loaded
    assert checksums(tmp_path / "out") == before

    extended = jobs.run(*args, "--max_steps", "6", cwd=tmp_path)
    assert extended.returncode == 0, explain(extended)
    run = read_run(tmp_path / "out")
    assert (run["global_step"], run["status"]) == (6, "completed")
    assert run["resumed_from"].endswith("checkpoint-4")
    assert run["resume"]["changed_settings"] == {"max_steps": [4, 6]}
