"""--cleanup_output_dir_on_start never empties a directory another live job holds."""

import os
import subprocess
import sys

import pytest
from project_paths import ENTRYPOINTS

from ftimg_jobs.output_cleanup import cleanup_if_asked
from ftimg_jobs.run_lock import LOCK_FILE_NAME, OutputLockedError

HOLD_SCRIPT = """
import sys, time
from ftimg_jobs.run_lock import acquire
acquire(sys.argv[1], "lora-sft", "use another --output_dir", env={"FTIMG_RUN_NAME": "running-job"})
print("held", flush=True)
time.sleep(600)
"""
ASK = ["--output_dir", "out", "--cleanup_output_dir_on_start", "true"]


def test_a_directory_held_by_a_live_job_is_refused_untouched_and_emptied_once_it_is_gone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NODE_RANK", raising=False)
    out = tmp_path / "out"
    (out / "checkpoint-2").mkdir(parents=True)
    (out / "checkpoint-2" / "adapter_model.safetensors").write_text("weights")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, str(out / LOCK_FILE_NAME)], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ENTRYPOINTS)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputLockedError) as error:
            cleanup_if_asked("lora-sft", ASK)
        assert "in use by run running-job" in str(error.value) and "`ftimg stop running-job`" in str(error.value)
        assert sorted(p.name for p in out.iterdir()) == ["checkpoint-2", LOCK_FILE_NAME]
    finally:
        holder.kill()
        holder.wait()
    assert cleanup_if_asked("lora-sft", ASK) == "out"
    assert list(out.iterdir()) == []  # the stale lock went too, and ours was released


def test_only_node_zero_empties_the_shared_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "run.json").write_text("{}")
    monkeypatch.setenv("NODE_RANK", "1")
    assert cleanup_if_asked("lora-sft", ASK) is None and (tmp_path / "out" / "run.json").is_file()
