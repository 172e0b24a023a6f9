"""The shipped job catalogue and the dispatcher's handling of job names (no torch needed)."""

import json
import subprocess
import sys

import pytest

from ftimg_jobs.catalogue import CATALOGUE_PATH, find_job, load_catalogue, parse_catalogue
from ftimg_jobs.errors import JobError
from project_paths import ENTRYPOINTS

ENTRYPOINTS = ENTRYPOINTS
TRAINING_JOBS = {"qlora-sft", "lora-sft", "full-sft", "qlora-cls", "lora-cls", "full-cls"}


def test_catalogue_lists_training_infer_and_merge_jobs():
    jobs = load_catalogue()
    assert TRAINING_JOBS | {"infer", "merge"} <= set(jobs)
    for spec in jobs.values():
        module_file = ENTRYPOINTS / (spec.module.replace(".", "/") + ".py")
        assert module_file.is_file(), f"{spec.name}: module {spec.module} has no file"
        assert spec.description and "model_name_or_path" in spec.path_flags


def test_training_jobs_differ_only_by_adapter_defaults():
    jobs = load_catalogue()
    assert jobs["qlora-sft"].defaults["q_lora"] is True and jobs["qlora-sft"].defaults["use_lora"] is True
    assert jobs["lora-cls"].defaults["q_lora"] is False and jobs["lora-cls"].defaults["use_lora"] is True
    assert jobs["full-sft"].defaults["use_lora"] is False
    for name in TRAINING_JOBS:
        assert {"data_path", "output_dir", "deepspeed"} <= set(jobs[name].path_flags)


def test_unknown_job_lists_known_jobs():
    with pytest.raises(JobError, match=r"unknown job 'lora-stf'. Known jobs: full-cls, full-sft, infer"):
        find_job(load_catalogue(), "lora-stf")


def test_malformed_entries_are_rejected():
    with pytest.raises(JobError, match="job entry 1 is missing module"):
        parse_catalogue({"jobs": [{"name": "x", "description": "d", "distributed": True,
                                   "path_flags": [], "defaults": {}}]})
    entry = {"name": "x", "description": "d", "module": "m", "distributed": False, "path_flags": [], "defaults": {}}
    with pytest.raises(JobError, match="listed twice"):
        parse_catalogue({"jobs": [entry, entry]})


def test_catalogue_is_plain_json_for_the_host_tool():
    document = json.loads(CATALOGUE_PATH.read_text(encoding="utf-8"))
    assert document["schema_version"] == 1


def run_dispatcher(*args):
    return subprocess.run([sys.executable, "-m", "ftimg_jobs", *args], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ENTRYPOINTS), "PATH": "/usr/bin:/bin"}, timeout=60)


def test_dispatcher_rejects_unknown_job_with_the_list():
    result = run_dispatcher("nope")
    assert result.returncode == 2
    assert "unknown job 'nope'" in result.stderr and "lora-sft" in result.stderr


def test_dispatcher_without_a_job_prints_usage_and_jobs():
    result = run_dispatcher()
    assert result.returncode == 2
    assert "usage: python -m ftimg_jobs JOB" in result.stdout and "qlora-cls" in result.stdout
