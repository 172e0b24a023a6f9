"""Training really learns; a killed job resumes from its checkpoint (taking over its stale lock); SIGTERM saves
one and exits 143."""

import json
import re
import signal
import subprocess
import time

import pytest
from job_helpers import explain, read_run, write_jsonl

pytestmark = pytest.mark.docker

FAST = ["--model_max_length", "64", "--per_device_train_batch_size", "2", "--logging_steps", "1"]


def test_full_sft_memorises_a_repeated_example(jobs, tmp_path):
    write_jsonl(tmp_path / "repeat.jsonl", [{"instruction": "复述口令", "output": "芝麻开门 open sesame"}] * 16)
    result = jobs.run("full-sft", "--data_path", "repeat.jsonl", "--output_dir", "out", "--max_steps", "30",
                      "--learning_rate", "1e-2", "--warmup_steps", "0", "--per_device_train_batch_size", "4",
                      "--save_strategy", "no", cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    metrics = read_run(tmp_path / "out")["metrics"]
    assert metrics["final_logged_loss"] < 0.3 * metrics["first_logged_loss"], metrics


def wait_for(predicate, process, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if process.popen.poll() is not None:
            code, output = process.wait()
            pytest.fail(f"job ended (exit {code}) before the test could signal it:\n{output[-4000:]}")
        time.sleep(0.1)
    pytest.fail("timed out waiting for the job")


def lines_until_training(process) -> list:
    """The job's output up to the line that says training started, then two seconds of training."""
    lines = []
    for line in process.popen.stdout:
        lines.append(line)
        if "ftimg_jobs: training from step" in line:
            break
    time.sleep(2)
    return lines


def test_sigkilled_job_resumes_and_reaches_the_planned_step(jobs, tmp_path):
    args = ["lora-sft", "--output_dir", "out", "--max_steps", "60", "--save_steps", "5", *FAST]
    process = jobs.start(*args, cwd=tmp_path)
    wait_for(lambda: (tmp_path / "out" / "checkpoint-10" / "trainer_state.json").is_file(), process)
    holder = json.loads((tmp_path / "out" / "ftimg-lock.json").read_text())
    process.send_signal(signal.SIGKILL)  # docker kill: nothing of the job runs after it
    code, _ = process.wait()
    assert code != 0
    assert not (tmp_path / "out" / "run.json").exists()
    assert (tmp_path / "out" / "ftimg-lock.json").is_file()  # left behind by the dead job

    result = jobs.run(*args, cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    assert f"took over the stale lock of {holder['run']}" in result.stderr
    run = read_run(tmp_path / "out")
    assert run["global_step"] == 60 and run["status"] == "completed"
    assert run["lock"]["took_over_stale_lock"]["pid"] == holder["pid"]
    assert not (tmp_path / "out" / "ftimg-lock.json").exists()
    resumed_step = int(run["resumed_from"].rsplit("-", 1)[1])
    assert 10 <= resumed_step < 60
    assert run["args"]["resume_from_checkpoint"] == "auto"


def test_sigterm_saves_a_checkpoint_and_exits_143_then_resumes(jobs, tmp_path):
    process = jobs.start("lora-sft", "--output_dir", "out", "--max_steps", "5000", "--save_steps", "5000", *FAST,
                         cwd=tmp_path)
    lines = lines_until_training(process)
    process.send_signal(signal.SIGTERM)
    code, output = process.wait(timeout=300)
    assert code == 143, "".join(lines) + output[-4000:]
    checkpoints = sorted((tmp_path / "out").glob("checkpoint-*"))
    assert len(checkpoints) == 1 and (checkpoints[0] / "trainer_state.json").is_file()
    stopped_at = int(checkpoints[0].name.split("-")[1])
    assert 0 < stopped_at < 5000
    run = read_run(tmp_path / "out")
    assert (run["status"], run["exit_code"], run["global_step"]) == ("interrupted", 143, stopped_at)
    assert not (tmp_path / "out" / "ftimg-lock.json").exists()  # released on the way out

    result = jobs.run("lora-sft", "--output_dir", "out", "--max_steps", str(stopped_at + 2), "--save_steps", "5000",
                      *FAST, cwd=tmp_path)
    assert result.returncode == 0, explain(result)
    run = read_run(tmp_path / "out")
    assert run["global_step"] == stopped_at + 2 and run["resumed_from"].endswith(checkpoints[0].name)


def test_two_process_cpu_run_resumes_its_optimizer_state(jobs, tmp_path):
    """Each CPU process's device is ``cpu:N``; torch 2.1 could not load a checkpoint onto it (a requeued
    multi-node Slurm job died on resume)."""
    two_processes = {"NPROC_PER_NODE": "2"}
    args = ["lora-sft", "--output_dir", "out", "--save_steps", "2", *FAST]
    first = jobs.run(*args, "--max_steps", "2", cwd=tmp_path, env=two_processes)
    assert first.returncode == 0, explain(first)
    extended = jobs.run(*args, "--max_steps", "4", cwd=tmp_path, env=two_processes)
    assert extended.returncode == 0, explain(extended)
    run = read_run(tmp_path / "out")
    assert run["world_size"] == 2 and run["global_step"] == 4, run
    assert run["resumed_from"].endswith("checkpoint-2"), run["resumed_from"]


def signal_local_rank(process, rank: int, marker: str) -> None:
    """SIGTERM to the worker process of one local rank (its environment holds LOCAL_RANK) of the job whose
    command line contains ``marker``: as when one node of a multi-node job gets its signal first."""
    script = (f"for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ 2>/dev/null | grep -qx LOCAL_RANK={rank} "
              f"&& tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q {marker} && kill -TERM ${{p#/proc/}}; done; true")
    command = ["docker", "exec", process.container, "sh", "-c", script] if process.container else ["sh", "-c", script]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def test_a_signal_to_one_rank_stops_every_rank_at_the_same_step(jobs, tmp_path):
    process = jobs.start("lora-sft", "--output_dir", "out-one-rank", "--max_steps", "5000", "--save_steps", "5000",
                         *FAST, cwd=tmp_path, env={"NPROC_PER_NODE": "2"})
    lines = lines_until_training(process)
    signal_local_rank(process, 1, "out-one-rank")
    code, output = process.wait(timeout=300)
    output = "".join(lines) + output
    # torchrun itself was not signalled: it reports the worker that exited 143 as failed (exit 1).
    assert code in (143, 1), output[-4000:]
    assert "ftimg_jobs: received SIGTERM; saving a checkpoint" in output, output[-4000:]
    stopped = re.findall(r"another rank received a stop signal; saving a checkpoint at step (\d+)", output)
    checkpoints = sorted((tmp_path / "out-one-rank").glob("checkpoint-*"))
    assert len(stopped) == 1 and [path.name for path in checkpoints] == [f"checkpoint-{stopped[0]}"], output[-4000:]
    run = read_run(tmp_path / "out-one-rank")
    assert (run["status"], run["global_step"], run["world_size"]) == ("interrupted", int(stopped[0]), 2)
