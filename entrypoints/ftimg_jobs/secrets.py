"""Secrets in a job: what counts as one, how one arrives, and clearing it from what the job saves.

The rule is data, secret_names.json, shared with the host tool: a flag, YAML config key or
environment name is a secret when one of its words is a secret word (HF_TOKEN, hub_token;
not max_new_tokens). `ftimg run --secret NAME` and a secret flag such as `--hub_token` arrive
as read-only files /run/secrets/NAME; the dispatcher exports them into the job's environment
before anything else (`export_secret_files`). A secret that reaches a parsed argument (a flag
given to the job directly, or a key of its YAML config) is moved into the environment variable
the library reads (hub_token -> HF_TOKEN, which huggingface_hub uses for pushes) and cleared from
the argument (`clear_secret_fields`), so training_args.bin, checkpoints, trainer state,
TensorBoard hparams, logs, run.json and the model card never hold it.
"""

import json
import os
import re
import sys
from dataclasses import fields, is_dataclass
from functools import lru_cache
from pathlib import Path

RULE_FILE = Path(__file__).with_name("secret_names.json")


@lru_cache(maxsize=1)
def rule() -> dict:
    return json.loads(RULE_FILE.read_text(encoding="utf-8"))


def is_secret(name) -> bool:
    """True when a word of ``name`` (split on _ - .) is a secret word, in any case; special tokens are not."""
    name = str(name)
    plain = name.lower().replace("-", "_")
    if any(re.fullmatch(pattern, plain) for pattern in rule()["not_secret"]):
        return False
    return not set(rule()["words"]).isdisjoint(re.split(rule()["separators"], name.upper()))


def flag_env_name(flag: str) -> str:
    """The environment variable a secret flag's value belongs in: hub_token -> HF_TOKEN, else FLAG upper-cased."""
    flag = flag.lstrip("-").replace("-", "_")
    return rule()["flag_env"].get(flag, flag.upper())


def say(message: str) -> None:
    print(f"ftimg_jobs: {message}", file=sys.stderr, flush=True)


def export_secret_files(environ, directory=None) -> list:
    """Put each file of /run/secrets into ``environ`` under its name; the names exported.

    A file wins over a variable of the same name already set: it is the way the caller chose.
    """
    directory = Path(directory or rule()["secrets_dir"])
    if not directory.is_dir():
        return []
    names = []
    for path in sorted(directory.iterdir()):
        if path.is_file() and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", path.name):
            # A file written by hand (compose's file secrets) often ends with a newline no secret contains.
            environ[path.name] = path.read_text(encoding="utf-8").rstrip("\r\n")
            names.append(path.name)
    return names


def secrets_summary(environ, from_files) -> str:
    """The secrets this job sees: names, where from and lengths, never values ("" when none)."""
    names = sorted(set(from_files) | {name for name in environ if is_secret(name)})
    parts = [f"{name} ({'file' if name in from_files else 'environment'}, {len(environ[name])} characters)"
             for name in names if environ.get(name)]
    return f"secrets: {', '.join(parts)}" if parts else ""


def move_secret_flags(argv, environ) -> tuple:
    """Take every secret flag (`--hub_token V`, `--hub-token=V`) out of ``argv`` into ``environ``;
    (the argv left, a note per flag naming its variable and length, never its value).

    The dispatcher does this first, so the launcher's echoed command and every torchrun worker's argv
    (which `ps` shows to every user of the machine) never hold the value. The flag wins over a variable
    already set, as it does when a job reads it (clear_secret_fields). A flag without a value stays for
    the job's parser to report.
    """
    kept, notes, index = [], [], 0
    while index < len(argv):
        token = str(argv[index])
        name, joined, value = token[2:].partition("=")
        has_value = joined or (index + 1 < len(argv) and not str(argv[index + 1]).startswith("--"))
        if not token.startswith("--") or not is_secret(name) or not has_value:
            kept.append(token)
            index += 1
            continue
        if not joined:
            value = str(argv[index + 1])
            index += 1
        index += 1
        environ[flag_env_name(name)] = value
        notes.append(f"--{name} ({len(value)} characters) moved into {flag_env_name(name)}; "
                     "kept out of the command line and everything the job saves")
    return kept, notes


def masked_command(cmd) -> str:
    """``cmd`` as one line with the value of every secret flag shown as ***."""
    shown, hide_next = [], False
    for token in map(str, cmd):
        name, joined, _ = token[2:].partition("=")
        secret_flag = token.startswith("--") and is_secret(name)
        shown.append("***" if hide_next else f"--{name}=***" if secret_flag and joined else token)
        hide_next = secret_flag and not joined
    return " ".join(shown)


def cli_flag_names(argv) -> set:
    return {token[2:].partition("=")[0].replace("-", "_") for token in argv if str(token).startswith("--")}


def clear_secret_fields(instances, cli_argv, environ) -> list:
    """Move every secret string field of the parsed ``instances`` into ``environ`` and clear it; notes.

    A flag on the command line beats a variable already set (as the library would use it); a key of
    the YAML config does not replace one: a value given at run time (--secret, -e, the flag) wins.
    """
    on_cli = cli_flag_names(cli_argv)
    notes = []
    for instance in instances:
        if not is_dataclass(instance):
            continue
        for item in fields(instance):
            value = getattr(instance, item.name, None)
            if not is_secret(item.name) or not isinstance(value, str) or not value:
                continue
            env_name = flag_env_name(item.name)
            if item.name in on_cli or not environ.get(env_name):
                environ[env_name] = value
                notes.append(f"{item.name} ({len(value)} characters) moved into {env_name}; "
                             "cleared from everything the job saves")
            else:
                notes.append(f"{item.name} from the config file ignored: {env_name} is already set "
                             f"({len(environ[env_name])} characters); cleared from everything the job saves")
            setattr(instance, item.name, None)
    return notes
