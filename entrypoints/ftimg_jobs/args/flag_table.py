"""Flags from other trainers and launchers (the seeds' command lines), read from the data file flags.json.

Four kinds, each applied only to a name the job itself does not know:
renamed (same value, ftimg's name), translated (a value standing for other
settings), launcher (read by the dispatcher, then dropped) and refused (no
meaning here: the error names what to use instead). Pure and torch-free.
"""

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

FLAG_TABLE_PATH = Path(__file__).resolve().parent.parent / "flags.json"
TRUE_WORDS = {"true", "yes", "1", "y", "t"}
FALSE_WORDS = {"false", "no", "0", "n", "f"}
# A renamed flag given one of these values is left out (seed 003: --eval_data NA).
UNSET_VALUES = {"na", "none", "null"}


@lru_cache(maxsize=None)
def load_flag_table(path: Path = FLAG_TABLE_PATH) -> dict:
    """The table as a dict with the sections renamed, translated, launcher, refused."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def renamed_flags() -> dict:
    return load_flag_table()["renamed"]


def refusal(name: str, table: dict):
    """What to use instead of ``name``, or None when the table does not refuse it."""
    for pattern, instead in table["refused"].items():
        if name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1])):
            return instead
    return None


def bool_word(value: str):
    lowered = value.lower()
    return "true" if lowered in TRUE_WORDS else "false" if lowered in FALSE_WORDS else lowered


def alias_note(argv: list, message: str) -> str:
    """Name the user's own spelling of each renamed flag the message mentions: ``--train_data`` for --data_path."""
    typed = {token[2:].partition("=")[0].replace("-", "_") for token in argv if token.startswith("--")}
    given = [f"--{old} is --{new} here" for old, new in load_flag_table()["renamed"].items()
             if old in typed and f"--{new}" in message]
    return f" ({'; '.join(given)})" if given else ""


@dataclass
class TableResult:
    tokens: list  # argv without the translated, launcher and refused flags
    implied: dict = field(default_factory=dict)  # settings the translated flags stand for
    launcher: dict = field(default_factory=dict)  # launcher flag -> value
    problems: list = field(default_factory=list)


def split_flags(tokens: list) -> list:
    """``[(name, value or None, [tokens])]`` for each ``--flag [value]``; other tokens ride along as (None, ...)."""
    items, index = [], 0
    while index < len(tokens):
        token = tokens[index]
        if token.startswith("--"):
            values = []
            while index + 1 < len(tokens) and not tokens[index + 1].startswith("--"):
                values.append(tokens[index + 1])
                index += 1
            items.append((token[2:], values[0] if len(values) == 1 else None, [token, *values]))
        else:
            items.append((None, None, [token]))
        index += 1
    return items


def translate_setting(name: str, value, table: dict, result: TableResult) -> bool:
    """Record what one flag the job does not know stands for; False when the table has no entry for it."""
    text = "true" if value is None else str(value)
    if name in table["translated"]:
        choices = table["translated"][name]
        key = bool_word(text) if set(choices) & {"true", "false"} else text
        if key not in choices:
            result.problems.append(f"--{name} {text}: expected one of {', '.join(choices)}")
        else:
            result.implied.update(choices[key])
        return True
    if name in table["launcher"]:
        result.launcher[name] = bool_word(text)
        return True
    instead = refusal(name, table)
    if instead is not None:
        result.problems.append(f"--{name} has no meaning in an ftimg job: {instead}")
        return True
    return False


def apply_flag_table(tokens: list, known: set, table: dict = None) -> TableResult:
    """Take the translated, launcher and refused flags out of normalized CLI tokens."""
    table = table or load_flag_table()
    result = TableResult(tokens=[])
    for name, value, group in split_flags(tokens):
        if name is not None and name not in known:
            if translate_setting(name, value, table, result):
                continue
        if name in table["renamed"].values() and name.endswith("_path") and str(value).lower() in UNSET_VALUES:
            continue
        result.tokens.extend(group)
    return result


def apply_flag_table_to_config(config: dict, known: set, table: dict = None) -> tuple:
    """The same for a YAML config's keys: ``(remaining config, TableResult without tokens)``."""
    table = table or load_flag_table()
    result, remaining = TableResult(tokens=[]), {}
    for name, value in config.items():
        if name not in known and translate_setting(name, None if value is True else value, table, result):
            continue
        remaining[name] = value
    return remaining, result

