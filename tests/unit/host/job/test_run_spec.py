"""The pure run-spec builder: mounts and rewritten flags, GPUs, shm/ulimits, user, env, labels."""

import json

import pytest

from ftimg.errors import FtimgError
from ftimg.job.runspec import (DEFAULT_ULIMITS, GpuRequest, Mount, RunOptions, build_run_spec, default_shm_size,
                               image_jobs, job_environment, missing_gpu_runtime, parse_env_file, parse_gpus, parse_size,
                               parse_ulimits, run_user, with_run_name)

CWD = "/home/me/proj"
JOBS = [
    {"name": "lora-sft", "description": "LoRA SFT",
     "path_flags": ["model_name_or_path", "data_path", "eval_data_path", "output_dir", "deepspeed",
                    "resume_from_checkpoint"]},
    {"name": "infer", "description": "generation",
     "path_flags": ["model_name_or_path", "adapter_name_or_path", "input_path", "output_path"]},
]
HOST_FILES = {
    "/home/me/proj/data.jsonl": "file",
    "/home/me/proj/models/x": "dir",
    "/home/me/proj/cfg.yaml": "file",
    "/home/me/proj/ds.json": "file",
    "/home/me/proj/out/checkpoint-5": "dir",
    "/data/eval.jsonl": "file",
}
GIB = 1 << 30


def spec_for(*job_args, job="lora-sft", config=None, host_env=None, caller=(1234, 1234), **options):
    opts = RunOptions(image="ftimg/train:test", job=job, job_args=list(job_args), **options)
    return build_run_spec(opts, JOBS, host_env or {}, CWD, caller, 64 * GIB, HOST_FILES.get, "t0",
                          config=config)


def test_both_flag_forms_are_mounted_and_rewritten_inputs_read_only_output_read_write():
    spec = spec_for("--model_name_or_path", "./models/x", "--data_path=data.jsonl", "--output_dir", "out",
                    "--lora_r", "16")
    assert spec.command == ["lora-sft", "--model_name_or_path", "/mnt/host/home/me/proj/models/x",
                            "--data_path=/mnt/host/home/me/proj/data.jsonl",
                            "--output_dir", "/mnt/host/home/me/proj/out", "--lora_r", "16"]
    assert spec.mounts == [
        Mount("/home/me/proj/data.jsonl", "/mnt/host/home/me/proj/data.jsonl", True),
        Mount("/home/me/proj/models/x", "/mnt/host/home/me/proj/models/x", True),
        Mount("/home/me/proj/out", "/mnt/host/home/me/proj/out", False),
    ]
    assert spec.create_dirs == ["/home/me/proj/out"]


def test_dashed_flag_names_and_absolute_paths():
    spec = spec_for("--eval-data-path", "/data/eval.jsonl", "--output_dir", "/tmp/o/../run")
    assert spec.command[1:3] == ["--eval-data-path", "/mnt/host/data/eval.jsonl"]
    assert spec.command[4] == "/mnt/host/tmp/run"
    assert Mount("/data/eval.jsonl", "/mnt/host/data/eval.jsonl", True) in spec.mounts


def test_values_that_are_not_host_paths_pass_unchanged():
    spec = spec_for("--model_name_or_path", "Qwen/Qwen2-7B", "--deepspeed", "zero2",
                    "--resume_from_checkpoint", "auto", "--output_dir", "out")
    assert spec.command[1:7] == ["--model_name_or_path", "Qwen/Qwen2-7B", "--deepspeed", "zero2",
                                 "--resume_from_checkpoint", "auto"]
    assert [m.source for m in spec.mounts] == ["/home/me/proj/out"]
    assert spec.notes == []


def test_a_missing_relative_data_file_is_noted():
    spec = spec_for("--data_path", "dat.jsonl", "--output_dir", "out")
    assert spec.command[2] == "dat.jsonl"
    assert spec.notes == ["--data_path dat.jsonl: not found on this host, passed to the job unchanged"]


def test_a_checkpoint_inside_the_output_dir_needs_no_mount_of_its_own():
    spec = spec_for("--output_dir", "out", "--resume_from_checkpoint", "out/checkpoint-5")
    assert spec.command[-1] == "/mnt/host/home/me/proj/out/checkpoint-5"
    assert spec.mounts == [Mount("/home/me/proj/out", "/mnt/host/home/me/proj/out", False)]


def test_no_output_dir_mounts_the_jobs_default_under_cwd():
    spec = spec_for()
    assert spec.command == ["lora-sft", "--output_dir", "/mnt/host/home/me/proj/output/lora-sft"]
    assert spec.create_dirs == ["/home/me/proj/output/lora-sft"]
    assert spec.mounts == [Mount("/home/me/proj/output/lora-sft", "/mnt/host/home/me/proj/output/lora-sft", False)]


def test_infer_output_path_mounts_its_directory_read_write():
    spec = spec_for("--input_path", "data.jsonl", "--output_path", "preds/p.jsonl", job="infer")
    assert spec.command[-1] == "/mnt/host/home/me/proj/preds/p.jsonl"
    assert Mount("/home/me/proj/preds", "/mnt/host/home/me/proj/preds", False) in spec.mounts
    assert spec.create_dirs == ["/home/me/proj/preds"]


def test_yaml_config_is_mounted_and_its_paths_overridden_by_flags():
    config = {"data_path": "data.jsonl", "model-name-or-path": "models/x", "lora_r": 8, "output_dir": "out"}
    spec = spec_for("cfg.yaml", "--num_train_epochs", "2", config=config)
    assert spec.command == ["lora-sft", "/mnt/host/home/me/proj/cfg.yaml", "--num_train_epochs", "2",
                            "--data_path", "/mnt/host/home/me/proj/data.jsonl",
                            "--model_name_or_path", "/mnt/host/home/me/proj/models/x",
                            "--output_dir", "/mnt/host/home/me/proj/out"]
    assert Mount("/home/me/proj/cfg.yaml", "/mnt/host/home/me/proj/cfg.yaml", True) in spec.mounts


def test_cli_flag_beats_the_yaml_path():
    spec = spec_for("cfg.yaml", "--output_dir", "elsewhere", config={"output_dir": "out"})
    assert spec.command.count("--output_dir") == 1
    assert spec.create_dirs == ["/home/me/proj/elsewhere"]


@pytest.mark.parametrize("value, expected", [
    ("all", GpuRequest(count=-1)), ("2", GpuRequest(count=2)), ("count=4", GpuRequest(count=4)),
    ("device=0,2", GpuRequest(device_ids=("0", "2"))), ('"device=1"', GpuRequest(device_ids=("1",))),
])
def test_gpus_forms(value, expected):
    assert parse_gpus(value) == expected
    assert spec_for(gpus=value).gpus == expected


@pytest.mark.parametrize("value", ["0", "two", "device=", "-1"])
def test_bad_gpus_is_an_error(value):
    with pytest.raises(FtimgError, match="--gpus"):
        parse_gpus(value)


def test_no_gpus_means_cpu():
    assert spec_for().gpus is None


def test_default_shm_ulimits_init():
    spec = spec_for()
    assert spec.shm_size == 16 * GIB and spec.ipc_mode is None
    assert spec.ulimits == {"memlock": (-1, -1), "stack": (67108864, 67108864)}
    assert spec.init is True
    assert default_shm_size(8 * GIB) == 4 * GIB
    assert default_shm_size(23 * GIB + 7) == 11 * GIB
    assert default_shm_size(GIB) == GIB
    assert default_shm_size(0) == 16 * GIB


def test_ipc_host_drops_shm_and_conflicts_with_shm_size():
    assert spec_for(ipc="host").shm_size is None
    with pytest.raises(FtimgError, match="--ipc host"):
        spec_for(ipc="host", shm_size="8g")


def test_shm_size_and_ulimit_overrides():
    assert spec_for(shm_size="512m").shm_size == 512 << 20
    assert parse_size("2GiB", "--shm-size") == 2 * GIB
    with pytest.raises(FtimgError, match="--shm-size 12x"):
        parse_size("12x", "--shm-size")
    limits = parse_ulimits(["nofile=1024:2048", "stack=-1"])
    assert limits == {**DEFAULT_ULIMITS, "nofile": (1024, 2048), "stack": (-1, -1)}
    with pytest.raises(FtimgError, match="NAME=SOFT"):
        parse_ulimits(["memlock"])


def test_user_is_the_caller_never_root():
    assert run_user(None, (1234, 50), {}) == "1234:50"
    assert run_user(None, (0, 0), {"SUDO_UID": "1001", "SUDO_GID": "1002"}) == "1001:1002"
    assert run_user(None, (0, 0), {}) == "1000:1000"
    assert run_user("2000:2000", (0, 0), {}) == "2000:2000"
    for bad in ("0", "0:0", "root", "1000:0"):
        with pytest.raises(FtimgError, match="never run as root"):
            run_user(bad, (1234, 1234), {})


def test_env_pass_through_env_file_and_secrets_by_name():
    host = {"NCCL_DEBUG": "INFO", "TORCH_CUDA_ARCH_LIST": "8.0", "CUDA_VISIBLE_DEVICES": "1",
            "OMP_NUM_THREADS": "4", "HOME": "/root", "HF_TOKEN": "s3cret", "PATH": "/bin"}
    env, notes = job_environment(["HF_TOKEN", "WANDB_MODE=offline", "MISSING"], {"A": "1", "NCCL_DEBUG": "WARN"},
                                 host)
    assert env == {"NCCL_DEBUG": "WARN", "TORCH_CUDA_ARCH_LIST": "8.0", "CUDA_VISIBLE_DEVICES": "1",
                   "OMP_NUM_THREADS": "4", "HF_TOKEN": "s3cret", "WANDB_MODE": "offline", "A": "1"}
    assert notes == ["--env MISSING: not set in this environment, not passed to the job"]
    no_secret, _ = job_environment([], {}, host)
    assert "HF_TOKEN" not in no_secret and "HOME" not in no_secret


def test_env_file_format():
    values = parse_env_file("# comment\n\nA=1\nHF_TOKEN\nEMPTY=\nUNSET\n", {"HF_TOKEN": "t"}, "f.env")
    assert values == {"A": "1", "HF_TOKEN": "t", "EMPTY": ""}
    with pytest.raises(FtimgError, match="f.env:2"):
        parse_env_file("A=1\nnot a name=2\n", {}, "f.env")


def test_hf_cache_is_mounted_and_set_as_hf_home():
    spec = spec_for(hf_cache="~cache")
    assert Mount("/home/me/proj/~cache", "/mnt/hf-cache", False) in spec.mounts
    assert spec.environment["HF_HOME"] == "/mnt/hf-cache"
    assert "/home/me/proj/~cache" in spec.create_dirs


def test_labels_and_name():
    spec = spec_for("--output_dir", "out")
    assert spec.name == "ftimg-lora-sft-t0"
    assert spec.labels == {"org.ftimg.run.job": "lora-sft", "org.ftimg.run.image": "ftimg/train:test",
                           "org.ftimg.run.output": "/home/me/proj/out"}
    assert spec_for(name="mine").name == "mine"
    # Only `ftimg run` names its container to the job (`ftimg stop NAME` in a second job's lock error):
    # compose services and sbatch steps built from this spec run under other names.
    assert "FTIMG_RUN_NAME" not in spec.environment
    assert with_run_name(spec).environment["FTIMG_RUN_NAME"] == "ftimg-lora-sft-t0"
    assert with_run_name(spec_for(name="mine")).environment["FTIMG_RUN_NAME"] == "mine"


def test_unknown_job_lists_the_images_jobs():
    with pytest.raises(FtimgError) as error:
        spec_for(job="sft")
    assert "unknown job 'sft'" in str(error.value)
    assert "lora-sft" in str(error.value) and "infer" in str(error.value)


def test_image_jobs_come_from_the_label():
    assert image_jobs({"org.ftimg.jobs": json.dumps(JOBS)}, "img") == JOBS
    with pytest.raises(FtimgError, match="not an ftimg train image"):
        image_jobs({}, "debian:12")


def test_gpu_runtime_check():
    assert missing_gpu_runtime({"Runtimes": {"runc": {}, "nvidia": {}}}) is None
    assert missing_gpu_runtime({"Runtimes": {"runc": {}}, "CDISpecDirs": ["/etc/cdi"]}) is None
    problem = missing_gpu_runtime({"Runtimes": {"runc": {}}})
    assert "nvidia-container-toolkit" in problem and "runc" in problem
