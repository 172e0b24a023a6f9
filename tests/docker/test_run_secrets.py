"""One fake token given every way at once reaches the job and no byte ftimg, the engine or the job leaves behind.

Ways: `--hub_token` on the command line, `hub_token` in the YAML config, `-e WANDB_API_KEY`,
`--secret MY_SERVICE_TOKEN` (from ftimg's environment) and `--secret DB_PASSWORD=FILE`. Each
value starts with PREFIX and has its own length, so the job's summary line (names and lengths,
never values) shows which arrived. Searched: ftimg's stdout and stderr, the container's logs,
`docker inspect` of the container (only the -e value may be there: that is what -e does), every
file under the output directory, the image's history and labels, and a compose file and batch
script written with the same flags.
"""

import json
from pathlib import Path

import pytest
import yaml
from tracked import containers, ftimg, memlock_args, tree_contains  # noqa: F401

pytestmark = pytest.mark.docker

PREFIX = "hf_FAKEftimg"
FLAG_TOKEN = PREFIX + "Flag_" + "a" * 21
CONFIG_TOKEN = PREFIX + "Config_" + "b" * 30
E_TOKEN = PREFIX + "DashE_" + "c" * 11
ENV_SECRET = PREFIX + "EnvSecret_" + "d" * 15
FILE_SECRET = PREFIX + "FileSecret_" + "e" * 7


@pytest.fixture
def workdir(tmp_path, project_root):
    (tmp_path / "train.json").write_bytes((project_root / "entrypoints/data/sft/alpaca_zh_en.json").read_bytes())
    (tmp_path / "sft.yaml").write_text(f"data_path: train.json\nhub_token: {CONFIG_TOKEN}\nlora_r: 4\n"
                                       "max_steps: 2\nsave_steps: 1\nmodel_max_length: 128\n")
    (tmp_path / "db.txt").write_text(FILE_SECRET + "\n")
    return tmp_path


def ftimg_with_secrets(command, *options, workdir, extra=()):
    """`ftimg COMMAND` given the token every way; (exit code, stdout, stderr)."""
    return ftimg(command, *options, "-e", "WANDB_API_KEY", "--secret", "MY_SERVICE_TOKEN", *extra,
                 "lora-sft", "sft.yaml", "--hub_token", FLAG_TOKEN, "--output_dir", "out", cwd=workdir,
                 env={"WANDB_API_KEY": E_TOKEN, "MY_SERVICE_TOKEN": ENV_SECRET, "HF_TOKEN": ""})


def test_a_token_given_every_way_reaches_the_job_and_nothing_else(client, train_image, workdir, containers,
                                                                    memlock_args):
    name = "ftimg-test-secrets"
    containers.append(name)
    code, out, err = ftimg_with_secrets("run", "--image", train_image, "--keep", "--name", name, *memlock_args,
                                        workdir=workdir, extra=("--secret", "DB_PASSWORD=db.txt"))
    assert code == 0, err[-3000:]

    # The job saw each value (its lengths), and the config's token gave way to the flag's.
    assert (f"secrets: DB_PASSWORD (file, {len(FILE_SECRET)} characters), HF_TOKEN (file, {len(FLAG_TOKEN)} "
            f"characters), MY_SERVICE_TOKEN (file, {len(ENV_SECRET)} characters), WANDB_API_KEY (environment, "
            f"{len(E_TOKEN)} characters)") in err + out
    assert (f"hub_token from the config file ignored: HF_TOKEN is already set ({len(FLAG_TOKEN)} characters)"
            in err + out)
    assert "HF_TOKEN=*** (from --hub_token)" in err and "-e WANDB_API_KEY: the value is stored" in err
    assert PREFIX not in out + err

    logs = client.api.logs(name, stdout=True, stderr=True).decode()
    assert "secrets: DB_PASSWORD" in logs and PREFIX not in logs

    info = client.api.inspect_container(name)
    assert not any(PREFIX in token for token in info["Args"] + info["Config"]["Cmd"])
    env = info["Config"]["Env"]
    assert f"WANDB_API_KEY={E_TOKEN}" in env  # what -e does, and the docs say so
    info["Config"]["Env"] = [item for item in env if not item.startswith("WANDB_API_KEY=")]
    assert PREFIX not in json.dumps(info)
    secret_mounts = {m["Target"]: m for m in info["HostConfig"]["Mounts"] if m["Target"].startswith("/run/secrets/")}
    assert sorted(secret_mounts) == ["/run/secrets/DB_PASSWORD", "/run/secrets/HF_TOKEN",
                                     "/run/secrets/MY_SERVICE_TOKEN"]
    assert all(m["ReadOnly"] for m in secret_mounts.values())
    assert not any(Path(m["Source"]).exists() for m in secret_mounts.values()), "secret files left on the host"

    out_dir = workdir / "out"
    assert {p.parent.name for p in out_dir.rglob("training_args.bin")} == {"out", "checkpoint-1", "checkpoint-2"}
    assert list(out_dir.rglob("events.out.tfevents.*")) and (out_dir / "run.json").is_file()
    assert tree_contains(out_dir, PREFIX.encode()) == []

    assert PREFIX not in json.dumps(client.api.inspect_image(train_image)) + json.dumps(client.api.history(train_image))

    code, out, err = ftimg_with_secrets("compose", "--image", train_image, "-o", "train.yml", workdir=workdir,
                                        extra=("--secret", "DB_PASSWORD=db.txt"))
    assert code == 0, err
    text = (workdir / "train.yml").read_text()
    assert PREFIX not in text + out + err
    service = yaml.safe_load(text)["services"]["node0"]
    assert {"HF_TOKEN", "MY_SERVICE_TOKEN", "WANDB_API_KEY"} <= set(service["environment"])
    assert service["secrets"] == ["DB_PASSWORD"]
    assert "--hub_token" not in service["command"]

    code, out, err = ftimg_with_secrets("sbatch", "--image", train_image, "--runtime", "docker", "-o", "job.sbatch",
                                        workdir=workdir)
    assert code == 0, err
    script = (workdir / "job.sbatch").read_text()
    assert PREFIX not in script + out + err
    assert all(name in script for name in ("HF_TOKEN", "MY_SERVICE_TOKEN", "WANDB_API_KEY"))
    assert "--hub_token" not in script
