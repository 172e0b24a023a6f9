"""One job per output: the lock file, its holder's liveness, and taking over a stale one."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from project_paths import ENTRYPOINTS

from ftimg_jobs import run_lock
from ftimg_jobs.run_lock import OutputLockedError, acquire, lock_path_for_directory, lock_path_for_file

HOLD_SCRIPT = """
import sys, time
from ftimg_jobs.run_lock import acquire
acquire(sys.argv[1], "lora-sft", "use another --output_dir", env={"FTIMG_RUN_NAME": "first-run"})
print("held", flush=True)
time.sleep(600)
"""


def hold_in_another_process(path):
    process = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, str(path)], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(ENTRYPOINTS)})
    assert process.stdout.readline().strip() == "held"
    return process


def test_lock_names_its_holder_and_is_removed_on_release(tmp_path):
    path = lock_path_for_directory(tmp_path / "out")
    lock = acquire(path, "lora-sft", "use another --output_dir", env={"FTIMG_RUN_NAME": "my-run"})
    record = json.loads(path.read_text())
    assert (record["run"], record["job"], record["pid"]) == ("my-run", "lora-sft", os.getpid())
    assert lock.took_over is None and [p.name for p in path.parent.iterdir()] == [path.name]
    lock.release()
    assert not path.exists()


def test_second_job_fails_at_once_naming_the_holder_and_what_to_do(tmp_path):
    path = lock_path_for_file(tmp_path / "predictions.jsonl")
    holder = hold_in_another_process(path)
    try:
        started = time.time()
        with pytest.raises(OutputLockedError) as error:
            acquire(path, "infer", "give this run another --output_path")
        assert time.time() - started < 2
        message = str(error.value)
        assert "predictions.jsonl is in use by run first-run" in message
        assert f"pid {holder.pid}" in message and "another --output_path" in message
        assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temp file left behind
    finally:
        holder.kill()
        holder.wait()


def test_lock_of_a_killed_job_is_taken_over_and_says_whose_it_was(tmp_path):
    path = lock_path_for_directory(tmp_path)
    holder = hold_in_another_process(path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert path.exists()
    lock = acquire(path, "lora-sft", "use another --output_dir")
    assert lock.took_over["run"] == "first-run" and lock.took_over["pid"] == holder.pid
    assert json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()


def test_without_flock_same_container_dead_pid_is_stale_and_silence_elsewhere_is_too():
    here = {"hostname": "abc123", "boot_id": "boot-1", "pid": 1, "pid_namespace": "pid:[1]", "holder_id": "me"}
    now = 10_000.0
    dead = {"hostname": "abc123", "boot_id": "boot-1", "pid": 2 ** 22 + 7, "pid_namespace": "pid:[1]"}
    assert run_lock.stale_without_flock(dead, now, now, here)
    # A restarted container runs its job as pid 1 again: a lock naming our own pid is an earlier life's.
    assert run_lock.stale_without_flock({**dead, "pid": 1}, now, now, here)
    assert not run_lock.stale_without_flock({**dead, "pid": os.getpid(), "hostname": "abc123"}, now, now,
                                            {**here, "pid": -1})
    elsewhere = {"hostname": "other-node", "boot_id": "boot-2", "pid": 1}
    assert not run_lock.stale_without_flock(elsewhere, now - 60, now, here)
    assert run_lock.stale_without_flock(elsewhere, now - run_lock.STALE_AFTER_SECONDS - 1, now, here)


def test_only_global_rank_zero_takes_the_lock():
    assert run_lock.is_global_rank_zero({}) and run_lock.is_global_rank_zero({"RANK": "0", "LOCAL_RANK": "0"})
    assert not run_lock.is_global_rank_zero({"RANK": "4", "LOCAL_RANK": "0"})  # node-local rank 0 of node 2


def test_two_jobs_with_one_hostname_and_pid_cannot_both_hold_the_lock(tmp_path, monkeypatch):
    # Containers on --network host share the host's name and each runs its job as pid 1.
    monkeypatch.setattr(run_lock.socket, "gethostname", lambda: "gpu-node-7")
    monkeypatch.setattr(run_lock.os, "getpid", lambda: 1)
    path = lock_path_for_directory(tmp_path / "out")
    real_link, second = run_lock.os.link, {}

    def link_after_a_second_job_got_in(source, target):
        # The second job starts and finishes taking the lock between the first's candidate and its link.
        if not second:
            second["started"] = True
            try:
                second["lock"] = acquire(path, "lora-sft", "use another --output_dir")
            except OutputLockedError as error:
                second["error"] = error
        return real_link(source, target)

    monkeypatch.setattr(run_lock.os, "link", link_after_a_second_job_got_in)
    with pytest.raises(OutputLockedError, match="in use by run"):
        acquire(path, "lora-sft", "use another --output_dir")
    assert "error" not in second and second["lock"].kernel_locked  # the one holder holds the kernel's lock too
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left behind
    second["lock"].release()
    assert not path.exists()


def test_a_holder_is_told_apart_by_its_pid_namespace_and_holder_id_not_its_hostname():
    here = {"hostname": "gpu-node-7", "boot_id": "boot-1", "pid": 1, "pid_namespace": "pid:[1]", "holder_id": "me"}
    now = 10_000.0
    # Another container on --network host: same hostname and pid, its own pid namespace: alive until silent.
    neighbour = {**here, "pid_namespace": "pid:[2]", "holder_id": "them"}
    assert not run_lock.stale_without_flock(neighbour, now, now, here)
    assert run_lock.stale_without_flock(neighbour, now - run_lock.STALE_AFTER_SECONDS - 1, now, here)
    assert not run_lock.stale_without_flock({**here}, now, now, here)  # our own record


def test_how_to_stop_names_the_slurm_job_the_run_or_the_pid():
    assert run_lock.how_to_stop({"slurm_job_id": "4711", "run_name": "x", "pid": 1}) == "`scancel 4711`"
    assert run_lock.how_to_stop({"run_name": "ftimg-lora-sft-1", "container": "abc", "pid": 1}) == \
        "`ftimg stop ftimg-lora-sft-1`"
    assert run_lock.how_to_stop({"pid": 42, "host": "n1"}) == "`kill 42` on n1"
    record = run_lock.holder_record("lora-sft", {"SLURM_JOB_ID": "4711", "SLURMD_NODENAME": "n1"})
    assert run_lock.how_to_stop(record) == "`scancel 4711`" and record["run"] == "slurm job 4711"
