"""The one secret rule (host and jobs alike), the run spec without secret values, compose, secret files."""

import dataclasses
import os
import stat
from pathlib import Path

import pytest
import yaml

import ftimg_jobs.secrets as job_secrets
from ftimg.cluster.compose import compose_model, dumps
from ftimg.errors import FtimgError
from ftimg.job import secrets as host_secrets
from ftimg.job.runspec import RunOptions, build_run_spec
from ftimg.job.secret_files import ram_directory, secret_mounts
from ftimg.job.secrets import (SecretInput, collect_secrets, compose_secrets, parse_secret_option, passed_secret_names,
                               split_secret_flags)

TOKEN = "hf_FAKEftimgTestToken0123456789abcdef"
NAMES = ["HF_TOKEN", "hub_token", "hub-token", "push_to_hub_token", "WANDB_API_KEY", "OPENAI_APIKEY",
         "db.password", "AWS_SECRET_ACCESS_KEY", "GIT_CREDENTIALS", "my_passwd", "token", "Key",
         "max_new_tokens", "include_tokens_per_second", "tokenizer_name", "keep_last", "monkey", "keyboard",
         "TOKENS", "model_max_length", "HF_HOME", "NCCL_DEBUG", "secretary", "pad_token_id", "EOS-TOKEN", "mask_token", "",
         # A tokenizer's special tokens and their ids are text and numbers, however they are spelled.
         "eos_token_ids", "add_bos_token", "add_eos_token", "decoder_start_token_id", "forced_bos_token_id",
         "additional_special_token", "image_token_id", "ADD-EOS-TOKEN", "use_auth_token", "hf_token"]
SECRET = {"HF_TOKEN", "hub_token", "hub-token", "push_to_hub_token", "WANDB_API_KEY", "OPENAI_APIKEY",
          "db.password", "AWS_SECRET_ACCESS_KEY", "GIT_CREDENTIALS", "my_passwd", "token", "Key", "use_auth_token",
          "hf_token"}
JOBS = [{"name": "lora-sft", "description": "LoRA SFT", "path_flags": ["data_path", "output_dir"]}]
CWD = "/home/me/proj"


def test_host_and_jobs_read_one_rule_file():
    assert host_secrets.RULE_FILE.resolve() == job_secrets.RULE_FILE.resolve()
    assert host_secrets.rule() == job_secrets.rule()


@pytest.mark.parametrize("name", NAMES)
def test_host_and_jobs_classify_every_name_alike(name):
    assert host_secrets.is_secret(name) == job_secrets.is_secret(name) == (name in SECRET)


@pytest.mark.parametrize("flag, env", [("hub_token", "HF_TOKEN"), ("--push-to-hub-token", "HF_TOKEN"),
                                       ("wandb_api_key", "WANDB_API_KEY"),
                                       # The Hugging Face example scripts' spellings: huggingface_hub reads HF_TOKEN.
                                       ("--token", "HF_TOKEN"), ("use_auth_token", "HF_TOKEN"),
                                       ("--hf-token", "HF_TOKEN")])
def test_host_and_jobs_send_a_secret_flag_through_the_same_variable(flag, env):
    assert host_secrets.flag_env_name(flag) == job_secrets.flag_env_name(flag) == env


def test_secret_flags_leave_the_argv_in_both_forms():
    argv, found = split_secret_flags(["cfg.yaml", "--hub_token", TOKEN, "--max_new_tokens", "8",
                                      f"--wandb-api-key={TOKEN}x", "--lora_r", "4"])
    assert argv == ["cfg.yaml", "--max_new_tokens", "8", "--lora_r", "4"]
    assert [(s.name, s.origin, s.source, s.value) for s in found] == [
        ("HF_TOKEN", "flag", "--hub_token", TOKEN), ("WANDB_API_KEY", "flag", "--wandb-api-key", TOKEN + "x")]
    assert TOKEN not in repr(found) and TOKEN not in found[0].describe()


def test_a_secret_flag_without_value_says_what_to_do():
    with pytest.raises(FtimgError, match=r"--hub_token needs a value .*--secret HF_TOKEN"):
        split_secret_flags(["--hub_token", "--lora_r", "4"])


def test_a_secret_flag_given_true_asks_for_the_token_itself():
    with pytest.raises(FtimgError, match=r"--use_auth_token true: a secret flag takes the secret itself.*"
                                         r"--secret HF_TOKEN"):
        split_secret_flags(["--use_auth_token", "true"])
    assert split_secret_flags(["--token", TOKEN])[1][0].name == "HF_TOKEN"


def test_secret_options_and_their_mistakes():
    assert parse_secret_option("HF_TOKEN", CWD) == SecretInput("HF_TOKEN", "env", "HF_TOKEN")
    assert parse_secret_option("K=keys/k.txt", CWD) == SecretInput("K", "file", "/home/me/proj/keys/k.txt")
    for bad, why in [("HF-TOKEN", "NAME or NAME=FILE"), ("K=", "no file after '='"), ("=f", "NAME or")]:
        with pytest.raises(FtimgError, match=why):
            parse_secret_option(bad, CWD)
    flag = SecretInput("HF_TOKEN", "flag", "--hub_token", TOKEN)
    with pytest.raises(FtimgError, match=r"HF_TOKEN is given twice \(--hub_token and --secret HF_TOKEN\)"):
        collect_secrets([flag], ["HF_TOKEN"], [], CWD)
    with pytest.raises(FtimgError, match="given with -e and with --secret K"):
        collect_secrets([], ["K=f"], ["K"], CWD)


def spec_for(*job_args, config=None, **options):
    opts = RunOptions(image="ftimg/train:test", job="lora-sft", job_args=list(job_args), **options)
    return build_run_spec(opts, JOBS, {"HF_TOKEN": TOKEN}, CWD, (1000, 1000), 8 << 30, lambda _: None, "t0",
                          config=config)


def test_run_spec_holds_no_secret_value_in_command_env_or_labels():
    spec = spec_for("cfg.yaml", "--hub_token", TOKEN, "--output_dir", "out", secrets=["MY_KEY=key.txt"],
                    config={"hub_token": TOKEN + "yaml"})
    assert "--hub_token" not in spec.command and TOKEN not in " ".join(spec.command)
    assert TOKEN not in repr(dataclasses.replace(spec, notes=[]))
    assert all(TOKEN not in value for value in [*spec.environment.values(), *spec.labels.values()])
    assert [(s.name, s.origin) for s in spec.secrets] == [("HF_TOKEN", "flag"), ("MY_KEY", "file")]
    assert any("cfg.yaml: hub_token is a secret" in note for note in spec.notes)
    assert all(TOKEN not in note for note in spec.notes)


def test_run_spec_says_what_e_of_a_secret_exposes():
    spec = spec_for("--output_dir", "out", env=["HF_TOKEN"])
    assert spec.environment["HF_TOKEN"] == TOKEN
    assert any(note.startswith("-e HF_TOKEN: the value is stored in the container's configuration")
               and "--secret HF_TOKEN" in note for note in spec.notes)


def test_compose_file_names_secrets_never_values():
    spec = spec_for("--hub_token", TOKEN, "--output_dir", "out", secrets=["MY_KEY=key.txt", "OTHER_TOKEN"])
    names, notes = passed_secret_names(spec.secrets, "compose file")
    assert names == ["HF_TOKEN", "OTHER_TOKEN"]
    assert notes[0] == "--hub_token: its value is not written into the compose file; export HF_TOKEN where it runs"
    model = compose_secrets(compose_model(spec, 2, 0, passed_env=names), spec.secrets)
    text = dumps(model)
    assert TOKEN not in text
    document = yaml.safe_load(text)
    assert document["secrets"] == {"MY_KEY": {"file": "/home/me/proj/key.txt"}}
    for service in document["services"].values():
        assert service["secrets"] == ["MY_KEY"]
        assert "HF_TOKEN" in service["environment"] and "OTHER_TOKEN" in service["environment"]


def test_secret_files_go_to_a_ram_filesystem_and_say_so_when_there_is_none(tmp_path):
    runtime, disk = tmp_path / "run user", tmp_path / "disk"
    runtime.mkdir()
    disk.mkdir()
    table = f"/dev/sda1 / ext4 rw 0 0\ntmpfs {str(runtime).replace(' ', chr(92) + '040')} tmpfs rw 0 0\n"
    assert ram_directory({"XDG_RUNTIME_DIR": str(runtime)}, table) == str(runtime)
    assert ram_directory({"XDG_RUNTIME_DIR": str(disk)}, table) is None  # a directory on disk is no RAM
    warnings = []
    secret = SecretInput("HF_TOKEN", "flag", "--hub_token", TOKEN)
    with secret_mounts([secret], {"XDG_RUNTIME_DIR": str(disk)}, warnings.append, "/dev/sda1 / ext4 rw 0 0") as m:
        assert len(warnings) == 1 and os.path.dirname(m[0].source) in warnings[0] and "on disk" in warnings[0]
        assert "XDG_RUNTIME_DIR" in warnings[0] and TOKEN not in warnings[0]


def test_secret_files_are_private_read_only_and_gone_afterwards(tmp_path):
    (tmp_path / "key.txt").write_text(TOKEN + "-file\n")
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    secrets = [SecretInput("HF_TOKEN", "flag", "--hub_token", TOKEN), SecretInput("MY_TOKEN", "env", "MY_TOKEN"),
               SecretInput("MY_KEY", "file", str(tmp_path / "key.txt"))]
    table = f"tmpfs {runtime} tmpfs rw 0 0\n"
    with secret_mounts(secrets, {"MY_TOKEN": TOKEN + "-env", "XDG_RUNTIME_DIR": str(runtime)},
                       on_warning=pytest.fail, mount_table=table) as mounts:
        assert [m.target for m in mounts] == ["/run/secrets/HF_TOKEN", "/run/secrets/MY_TOKEN", "/run/secrets/MY_KEY"]
        assert all(m.read_only and m.source.startswith(str(runtime)) for m in mounts)
        assert [Path(m.source).read_text() for m in mounts] == [TOKEN, TOKEN + "-env", TOKEN + "-file"]
        assert stat.S_IMODE(os.stat(Path(mounts[0].source).parent).st_mode) == 0o700
        assert all(stat.S_IMODE(os.stat(m.source).st_mode) == 0o444 for m in mounts)
    assert list(runtime.iterdir()) == []


@pytest.mark.parametrize("secret, env, why", [
    (SecretInput("MY_TOKEN", "env", "MY_TOKEN"), {}, "MY_TOKEN is not set in this environment; export it"),
    (SecretInput("K", "file", "/nonexistent/k"), {}, r"--secret K=/nonexistent/k: cannot read it"),
    (SecretInput("MY_TOKEN", "env", "MY_TOKEN"), {"MY_TOKEN": ""}, "the value is empty"),
])
def test_a_secret_that_cannot_be_read_fails_before_anything_is_written(secret, env, why, tmp_path):
    with pytest.raises(FtimgError, match=why):
        with secret_mounts([secret], {**env, "XDG_RUNTIME_DIR": str(tmp_path)}):
            pass
    assert list(tmp_path.iterdir()) == []


def test_the_job_exports_secret_files_and_reports_lengths_only(tmp_path):
    (tmp_path / "HF_TOKEN").write_text(TOKEN + "\n")
    (tmp_path / "not a name").write_text("x")
    environ = {"WANDB_API_KEY": "k" * 7, "PATH": "/bin"}
    exported = job_secrets.export_secret_files(environ, tmp_path)
    assert exported == ["HF_TOKEN"] and environ["HF_TOKEN"] == TOKEN
    summary = job_secrets.secrets_summary(environ, exported)
    assert summary == (f"secrets: HF_TOKEN (file, {len(TOKEN)} characters), "
                       "WANDB_API_KEY (environment, 7 characters)")
    assert job_secrets.export_secret_files({}, tmp_path / "absent") == []


@dataclasses.dataclass
class TrainingLike:
    hub_token: str = None
    max_new_tokens: int = 8
    learning_rate: float = 1e-4


def test_the_job_moves_secret_fields_into_the_environment_and_clears_them():
    from_cli, from_yaml = TrainingLike(hub_token=TOKEN), TrainingLike(hub_token=TOKEN + "yaml")
    environ = {"HF_TOKEN": "from-the-environment"}
    notes = job_secrets.clear_secret_fields([from_cli], ["--hub-token", TOKEN], environ)
    assert environ["HF_TOKEN"] == TOKEN and from_cli.hub_token is None
    assert notes == [f"hub_token ({len(TOKEN)} characters) moved into HF_TOKEN; cleared from everything the job saves"]
    notes = job_secrets.clear_secret_fields([from_yaml], [], environ)
    assert environ["HF_TOKEN"] == TOKEN and from_yaml.hub_token is None and "ignored" in notes[0]
    assert all(TOKEN not in note for note in notes)
    fresh = {}
    job_secrets.clear_secret_fields([TrainingLike(hub_token=TOKEN)], [], fresh)
    assert fresh == {"HF_TOKEN": TOKEN}
