"""`ftimg run ... --dataset_spec spec.yaml` mounts the spec's folder: the spec names its data relative to it."""

import json

from ftimg.job.runspec import Mount, RunOptions, build_run_spec
from project_paths import JOBS_PACKAGE

CATALOGUE = JOBS_PACKAGE / "catalogue.json"

CWD = "/home/me/proj"
JOBS = [{"name": "lora-sft", "description": "LoRA SFT", "path_flags": ["data_path", "dataset_spec", "output_dir"]},
        {"name": "infer", "description": "generation",
         "path_flags": ["input_path", "dataset_spec", "output_path"]}]
HOST_FILES = {"/home/me/proj/ner/spec.yaml": "file", "/home/me/proj/ner/train.jsonl": "file"}


def spec_for(*job_args, job="lora-sft"):
    options = RunOptions(image="ftimg/train:x", job=job, job_args=list(job_args))
    return build_run_spec(options, JOBS, {}, CWD, (1234, 1234), 64 << 30, HOST_FILES.get, "t0")


def test_the_spec_folder_is_mounted_read_only_and_the_flag_names_the_file_inside_it():
    spec = spec_for("--dataset_spec", "ner/spec.yaml", "--output_dir", "out")
    assert spec.command[1:3] == ["--dataset_spec", "/mnt/host/home/me/proj/ner/spec.yaml"]
    assert Mount("/home/me/proj/ner", "/mnt/host/home/me/proj/ner", True) in spec.mounts
    assert not any(mount.source.endswith("spec.yaml") for mount in spec.mounts)


def test_the_shipped_catalogue_mounts_dataset_specs_for_every_data_job():
    catalogue = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    for job in catalogue["jobs"]:
        if "data_path" in job["path_flags"] or "input_path" in job["path_flags"]:
            assert "dataset_spec" in job["path_flags"], job["name"]
