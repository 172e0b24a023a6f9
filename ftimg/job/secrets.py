"""What is a secret, and how `ftimg run/compose/sbatch` hand one to a job without writing its value anywhere. Pure.

The rule is data shared with the jobs: secret_names.json, which lives in the jobs package
(entrypoints/ftimg_jobs) and is linked into this package, so the host never imports the jobs.
A name (flag, YAML config key, environment variable) is a secret when one of its words is a
secret word: HF_TOKEN and hub_token are, max_new_tokens and tokenizer_name are not.

A secret reaches the job as a read-only file /run/secrets/NAME that the job's dispatcher
exports as the environment variable NAME before anything else runs. A secret flag
(`--hub_token VALUE`) is taken out of the job's command and sent the same way under the
variable the library reads (HF_TOKEN); the jobs clear any secret field they are given.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Iterable

from ftimg.errors import FtimgError

RULE_FILE = Path(__file__).with_name("secret_names.json")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MASK = "***"


@lru_cache(maxsize=1)
def rule() -> dict:
    """The shared rule: words, separators, flag_env, secrets_dir."""
    return json.loads(RULE_FILE.read_text(encoding="utf-8"))


def is_secret(name: str) -> bool:
    """True when a word of `name` (split on _ - .) is a secret word, in any case; special tokens are not."""
    name = str(name)
    plain = name.lower().replace("-", "_")
    if any(re.fullmatch(pattern, plain) for pattern in rule()["not_secret"]):
        return False
    return not set(rule()["words"]).isdisjoint(re.split(rule()["separators"], name.upper()))


def flag_env_name(flag: str) -> str:
    """The environment variable a secret flag's value travels in: hub_token -> HF_TOKEN, else FLAG upper-cased."""
    flag = flag.lstrip("-").replace("-", "_")
    return rule()["flag_env"].get(flag, flag.upper())


def secrets_dir() -> str:
    return rule()["secrets_dir"]


@dataclass(frozen=True)
class SecretInput:
    """One secret the job gets as /run/secrets/NAME (and $NAME).

    origin is "flag" (`--hub_token VALUE`: `value` holds it), "env" (`--secret NAME`: read from
    the caller's environment when the job starts) or "file" (`--secret NAME=FILE`: `source` is
    the file's absolute path). The value never appears in repr().
    """

    name: str
    origin: str
    source: str
    value: str | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        where = {"flag": f"from {self.source}", "env": f"from ${self.source}", "file": f"from {self.source}"}
        return f"{self.name}={MASK} ({where[self.origin]})"


def split_secret_flags(tokens: list[str]) -> tuple[list[str], list[SecretInput]]:
    """Take every secret flag (`--hub_token V`, `--hub-token=V`) out of a job's argv.

    Returns (argv without them, one SecretInput per flag, named by the variable it travels in).
    """
    kept: list[str] = []
    found: list[SecretInput] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        name, joined, value = token[2:].partition("=")
        if not token.startswith("--") or not is_secret(name):
            kept.append(token)
            index += 1
            continue
        if not joined:
            if index + 1 >= len(tokens) or tokens[index + 1].startswith("--"):
                raise FtimgError(f"--{name} needs a value (or leave it out and pass "
                                 f"--secret {flag_env_name(name)}, read from your environment)")
            value = tokens[index + 1]
            index += 1
        index += 1
        if value.lower() in ("true", "false"):
            # Older Hugging Face scripts take `--use_auth_token true` to mean "the token of huggingface-cli login".
            raise FtimgError(f"--{name} {value}: a secret flag takes the secret itself, and the job has no stored "
                             f"login; give --secret {flag_env_name(name)} (read from your environment) instead")
        found.append(SecretInput(flag_env_name(name), "flag", f"--{name}", value))
    return kept, found


def parse_secret_option(option: str, cwd: str) -> SecretInput:
    """`--secret NAME` (value from the caller's environment) or `--secret NAME=FILE` (relative to cwd)."""
    name, has_file, path = option.partition("=")
    if not ENV_NAME.fullmatch(name):
        raise FtimgError(f"--secret {option}: expected NAME or NAME=FILE, NAME a variable name such as HF_TOKEN")
    if not has_file:
        return SecretInput(name, "env", name)
    if not path:
        raise FtimgError(f"--secret {option}: no file after '='; give NAME=FILE, or NAME to take $NAME")
    absolute = PurePosixPath(path) if path.startswith("/") else PurePosixPath(cwd) / path
    return SecretInput(name, "file", str(absolute))


def collect_secrets(flag_secrets: Iterable[SecretInput], options: Iterable[str], env_names: Iterable[str],
                    cwd: str) -> list[SecretInput]:
    """Secret flags plus --secret options; each variable given once, and not also with -e."""
    secrets = [*flag_secrets, *(parse_secret_option(option, cwd) for option in options)]
    seen: dict[str, SecretInput] = {}
    for secret in secrets:
        if secret.name in seen:
            first = seen[secret.name]
            raise FtimgError(f"{secret.name} is given twice ({_how(first)} and {_how(secret)}): give it once")
        seen[secret.name] = secret
    check_not_also_env(secrets, env_names)
    return secrets


def check_not_also_env(secrets: Iterable[SecretInput], env_names: Iterable[str]) -> None:
    """A variable given as a secret and with -e (by name, whether set or not) is refused: give it one way."""
    by_name = {secret.name: secret for secret in secrets}
    for name in env_names:
        name = name.partition("=")[0]
        if name in by_name:
            raise FtimgError(f"{name} is given with -e and with {_how(by_name[name])}: give one "
                             "(--secret keeps the value out of `docker inspect`)")


def _how(secret: SecretInput) -> str:
    return secret.source if secret.origin == "flag" else f"--secret {secret.name}"


def exposed_env_note(name: str) -> str:
    """What `-e NAME` for a secret shows to whom."""
    return (f"-e {name}: the value is stored in the container's configuration, where `docker inspect` shows it "
            f"to anyone who may use this Docker engine; --secret {name} hands it to the job as a read-only "
            "file instead")



def passed_secret_names(secrets: Iterable[SecretInput], where: str) -> tuple[list[str], list[str]]:
    """For a file ftimg writes (a compose file, a batch script): the variables it names so the job gets
    them from the environment the file is run in, and a note for each: no value is written.

    Secrets from files are not among them (a compose file mounts those; see compose_secrets).
    """
    names, notes = [], []
    for secret in secrets:
        if secret.origin == "file":
            continue
        names.append(secret.name)
        given = f"{secret.source}: its value" if secret.origin == "flag" else f"--secret {secret.name}: the value"
        notes.append(f"{given} is not written into the {where}; export {secret.name} where it runs")
    return sorted(set(names)), notes


def compose_secrets(model: dict, secrets: Iterable[SecretInput]) -> dict:
    """Add `--secret NAME=FILE` to a compose document: mounted by compose at /run/secrets/NAME, read-only.

    The file stays where the user keeps it; the compose file names its path, never its content.
    """
    files = {s.name: {"file": s.source} for s in secrets if s.origin == "file"}
    if files:
        for service in model["services"].values():
            service["secrets"] = sorted(files)
        model["secrets"] = files
    return model
