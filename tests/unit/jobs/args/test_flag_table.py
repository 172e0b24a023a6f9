"""The flag table (entrypoints/ftimg_jobs/flags.json): the seeds' flags, and host and jobs agreeing on names."""

import json
from pathlib import Path

import pytest
from seed_command_lines import SEEDS_DIR, command_lines

from ftimg.image import build
from ftimg.image.labels import image_labels
from ftimg.job import runspec
from ftimg.lock.lockfile import LockedProfile
from ftimg_jobs.args import config as jobs_config
from ftimg_jobs.args.config import assemble_argv, launcher_setting
from ftimg_jobs.args.flag_table import apply_flag_table, load_flag_table, refusal
from ftimg_jobs.catalogue import load_catalogue
from ftimg_jobs.errors import JobError
from ftimg_jobs.host_paths import host_paths
from ftimg_jobs.output_cleanup import cleanup_if_asked, empty_output_dir

TABLE = load_flag_table()
KNOWN = {"model_name_or_path", "data_path", "eval_data_path", "val_set_size", "q_lora", "lora_r", "lora_alpha",
         "lora_target_modules", "model_max_length", "flash_attn", "eval_strategy", "bf16", "fp16", "deepspeed",
         "output_dir", "max_num_samples", "train_on_prompt", "report_to"}


def seed_lines():
    if not SEEDS_DIR.is_dir():
        pytest.skip(f"no seeds at {SEEDS_DIR} (the shared/ folder beside the repository)")
    return command_lines()


def test_the_seeds_have_command_lines_to_walk():
    lines = seed_lines()
    assert {line.seed for line in lines} >= {"000", "001", "003", "004"}
    assert len(lines) >= 10


def test_every_seed_flag_the_table_names_is_taken_or_refused_with_its_replacement():
    """Flags outside the table must be the job's own (checked end to end by tests/jobs/test_seed_command_lines)."""
    for line in seed_lines():
        for name, value in line.flags():
            where = f"seed {line.seed} line {line.line}: --{name} {value}"
            target = jobs_config.canonical_flag(name)
            if target != name:
                assert not target.startswith(("use_", "mlfoundry")), where
            elif name in TABLE["translated"]:
                choices = TABLE["translated"][name]
                text = (value or "true").lower()
                assert text in choices, f"{where}: the seed's value is not in the table"
            elif refusal(name, TABLE) is not None:
                instead = refusal(name, TABLE)
                assert "--" in instead or "`" in instead or "drop" in instead, f"{where}: no replacement named"


def test_renamed_flags_point_at_flags_and_never_at_another_alias():
    for old, new in TABLE["renamed"].items():
        assert new not in TABLE["renamed"], old
        assert old not in TABLE["translated"] and refusal(old, TABLE) is None, old


def test_seed_003_flags_become_ftimg_settings(tmp_path):
    (tmp_path / "zero2.json").write_text("{}")
    argv = ["--mixed_precision", "bf16", "--use_deepspeed", "--model_id", "m", "--train_data", "d.jsonl",
            "--eval_data", "NA", "--eval_size", "0.1", "--use_qlora", "true", "--use_flash_attention", "true",
            "--max_num_samples", "5", "--use_ddp", "true", "--cleanup_output_dir_on_start", "true"]
    tokens = assemble_argv({}, argv, KNOWN, tmp_path)
    assert jobs_config.flag_value(tokens, "model_name_or_path") == "m"
    assert jobs_config.flag_value(tokens, "data_path") == "d.jsonl"
    assert jobs_config.flag_value(tokens, "deepspeed") == str(tmp_path / "zero2.json")
    assert jobs_config.flag_value(tokens, "eval_data_path") is None  # NA means none: split instead
    assert jobs_config.flag_value(tokens, "val_set_size") == "0.1"
    assert jobs_config.flag_value(tokens, "q_lora") == "true"
    assert jobs_config.flag_value(tokens, "bf16") == "True"
    assert "--use_ddp" not in tokens and "--cleanup_output_dir_on_start" not in tokens


def test_use_deepspeed_means_zero2_unless_a_config_is_named(tmp_path):
    shipped = tmp_path / "ds"
    shipped.mkdir()
    (shipped / "zero2.json").write_text("{}")
    (tmp_path / "mine.json").write_text("{}")
    alone = assemble_argv({}, ["--use_deepspeed"], KNOWN, shipped)
    assert jobs_config.flag_value(alone, "deepspeed") == str(shipped / "zero2.json")
    named = assemble_argv({}, ["--deepspeed", str(tmp_path / "mine.json"), "--use_deepspeed", "true"], KNOWN, shipped)
    assert jobs_config.flag_value(named, "deepspeed") == str(tmp_path / "mine.json")


def test_an_explicit_flag_beats_what_a_translated_one_stands_for():
    tokens = assemble_argv({}, ["--bf16", "False", "--mixed_precision", "bf16"], KNOWN, Path("/nonexistent"))
    assert jobs_config.flag_value(tokens, "bf16") == "False"


def test_refused_flags_are_reported_together_each_with_its_replacement():
    with pytest.raises(JobError) as caught:
        assemble_argv({}, ["--mlfoundry_run_name", "x", "--mlfoundry_log_checkpoints", "false",
                           "--tokenizer_name_or_path", "t", "--load_in_kbits", "8", "--data_pth", "d"],
                      KNOWN, Path("/nonexistent"))
    message = str(caught.value)
    assert "--mlfoundry_run_name has no meaning in an ftimg job" in message and "--report_to" in message
    assert "--mlfoundry_log_checkpoints" in message
    assert "--tokenizer_name_or_path has no meaning" in message and "--model_name_or_path" in message
    assert "--load_in_kbits 8: expected one of 4, 16" in message
    assert "'--data_pth' (did you mean '--data_path'?)" in message


def test_yaml_keys_go_through_the_same_table(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model_id: m\nmixed_precision: fp16\nmlfoundry_ml_repo: r\n")
    with pytest.raises(JobError, match=r"c.yaml: --mlfoundry_ml_repo has no meaning.*--report_to"):
        assemble_argv({}, [str(config)], KNOWN, Path("/nonexistent"))
    config.write_text("model_id: m\nmixed_precision: fp16\n")
    tokens = assemble_argv({}, [str(config)], KNOWN, Path("/nonexistent"))
    assert jobs_config.flag_value(tokens, "model_name_or_path") == "m"
    assert jobs_config.flag_value(tokens, "fp16") == "True"


def test_a_job_that_knows_a_name_keeps_its_own_meaning():
    result = apply_flag_table(["--torch_dtype", "bfloat16"], {"torch_dtype"})
    assert result.tokens == ["--torch_dtype", "bfloat16"] and not result.implied


def test_launcher_flags_are_read_from_the_command_line():
    assert launcher_setting(["--use-ddp", "false"], "use_ddp") == "false"
    assert launcher_setting(["--use_ddp"], "use_ddp") == "true"
    assert launcher_setting(["--data_path", "x"], "use_ddp") is None


# Host and jobs agree: the host reads the jobs' table through the image label and never imports the jobs.

def host_jobs_from_label(project_root):
    """The jobs as `ftimg run` reads them from an image built from this tree."""
    profile = LockedProfile("cu121-torch2.1", {"python": "3.11", "base": {"image": "b"}}, ())
    labels = image_labels(profile, "abc", {}, build.load_jobs(project_root), build.load_flag_renames(project_root))
    return runspec.image_jobs(labels, "img")


def test_host_and_jobs_agree_on_every_flag_name(project_root):
    jobs = host_jobs_from_label(project_root)
    names = set(TABLE["renamed"]) | {flag for spec in load_catalogue().values() for flag in spec.path_flags}
    names |= {name.replace("_", "-") for name in names}
    for job in jobs:
        for name in names:
            assert runspec.canonical_flag(name, job["flag_renames"]) == jobs_config.canonical_flag(name), name


def test_host_and_jobs_agree_on_the_config_file_argument():
    for argv in (["c.yaml", "--a", "1"], ["c.yml"], ["--data_path", "c.yaml"], ["c.json"], [], ["-c.yaml"]):
        assert runspec.config_file_of(argv) == jobs_config.split_config_file(argv)[0], argv


def test_the_image_label_carries_the_jobs_renames(project_root):
    assert all(job["flag_renames"] == TABLE["renamed"] for job in host_jobs_from_label(project_root))


def test_a_renamed_path_flag_is_mounted_like_its_target(project_root):
    jobs = host_jobs_from_label(project_root)
    options = runspec.RunOptions(image="img", job="lora-sft",
                                 job_args=["--train_data", "./data.jsonl", "--model_id", "/models/m"])
    spec = runspec.build_run_spec(options, jobs, {}, "/home/me/proj", (1000, 1000), 0,
                                  lambda path: "file" if path.endswith(".jsonl") else "dir", "x")
    assert "/mnt/host/home/me/proj/data.jsonl" in spec.command
    assert "/mnt/host/models/m" in spec.command
    assert runspec.Mount("/home/me/proj/data.jsonl", "/mnt/host/home/me/proj/data.jsonl", True) in spec.mounts
    typed = json.loads(spec.environment["FTIMG_PATH_MAP"])
    assert typed["/mnt/host/home/me/proj/data.jsonl"] == "./data.jsonl"


# The job's errors show the user's own paths.

def test_errors_show_the_path_the_user_typed():
    path_map = json.dumps({"/mnt/host/home/me/proj/data.jsonl": "./data.jsonl",
                           "/mnt/host/home/me/proj/out": "out"})
    assert host_paths("/mnt/host/home/me/proj/data.jsonl:3: malformed", path_map) == "./data.jsonl:3: malformed"
    assert host_paths("no file /mnt/host/home/me/proj/output2/x", path_map) == "no file /home/me/proj/output2/x"
    assert host_paths("in /mnt/host/home/me/proj/out/checkpoint-2.", path_map) == "in out/checkpoint-2."
    assert host_paths("/mnt/hostname stays", "") == "/mnt/hostname stays"


# --cleanup_output_dir_on_start empties only what is inside the output directory.

def test_cleanup_empties_inside_the_output_dir_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    (out / "checkpoint-1").mkdir(parents=True)
    (out / "run.json").write_text("{}")
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "precious").write_text("x")
    (out / "link").symlink_to(keep)
    assert cleanup_if_asked("lora-sft", ["--output_dir", "out", "--cleanup_output_dir_on_start", "true"]) == "out"
    assert out.is_dir() and not any(out.iterdir())
    assert (keep / "precious").is_file()
    assert cleanup_if_asked("lora-sft", ["--output_dir", "keep"]) is None
    assert (keep / "precious").is_file()


def test_cleanup_refuses_the_working_and_home_directories(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(JobError, match="refusing to empty --output_dir ."):
        empty_output_dir(".")
    assert empty_output_dir(str(tmp_path / "absent")) == 0


def test_use_ddp_false_asks_the_launcher_for_one_process():
    from ftimg_jobs.__main__ import launch_environment

    assert launch_environment(["lora-sft", "--use_ddp", "false"], {})["NPROC_PER_NODE"] == "1"
    assert launch_environment(["lora-sft", "--use_ddp", "true"], {"A": "1"}) == {"A": "1"}


def test_an_error_about_a_renamed_flag_names_the_users_spelling():
    from ftimg_jobs.args.flag_table import alias_note

    message = "--data_path d.jsonl: no such file"
    assert alias_note(["--train_data", "d.jsonl"], message) == " (--train_data is --data_path here)"
    assert alias_note(["--data_path", "d.jsonl"], message) == ""
