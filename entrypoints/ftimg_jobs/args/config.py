"""Turn job defaults + an optional YAML config + CLI flags into one argv for HfArgumentParser.

Precedence, lowest first: the job's catalogue defaults, the YAML file given as
the first argument, then the command-line flags (argparse keeps the last value,
so the merge is simply concatenation). Everything here is pure and torch-free
so the rules are unit-tested without a model.
"""

import difflib
import json
from pathlib import Path

import yaml

from ftimg_jobs.args.flag_table import apply_flag_table, apply_flag_table_to_config, bool_word, renamed_flags, \
    split_flags
from ftimg_jobs.errors import JobError

CONFIG_SUFFIXES = (".yaml", ".yml")

# Flags that newer transformers retired in favour of another one taking the same value;
# renamed only where the old name is unknown (transformers 5: warmup_steps < 1 is a ratio).
RETIRED_FLAGS = {"warmup_ratio": "warmup_steps"}

TRUE_STRINGS = {"true", "yes", "1", "y", "t"}
HELP_FLAGS = {"-h", "--help"}


def split_config_file(argv: list) -> tuple:
    """Return ``(yaml_path or None, remaining argv)``: a config file is recognised only as the first argument."""
    if argv and not argv[0].startswith("-") and argv[0].endswith(CONFIG_SUFFIXES):
        return argv[0], list(argv[1:])
    return None, list(argv)


def load_config_file(path: str) -> dict:
    """Read a YAML mapping of flag names to values."""
    config_path = Path(path)
    if not config_path.is_file():
        raise JobError(f"config file {path} not found")
    try:
        document = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise JobError(f"{where}: invalid YAML: {getattr(error, 'problem', error)}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise JobError(f"{path}: a config file must be a mapping of flag names to values, got {type(document).__name__}")
    return document


def value_tokens(key: str, value) -> list:
    """Render one setting as argv tokens (``None`` means 'keep the default')."""
    if value is None:
        return []
    if isinstance(value, bool):
        return [f"--{key}", str(value)]
    if isinstance(value, (list, tuple)):
        return [f"--{key}", *(str(item) for item in value)] if value else []
    if isinstance(value, dict):
        return [f"--{key}", json.dumps(value)]
    return [f"--{key}", str(value)]


def mapping_tokens(settings: dict) -> list:
    """Render a mapping of settings as argv tokens."""
    tokens = []
    for key, value in settings.items():
        tokens.extend(value_tokens(key, value))
    return tokens


def canonical_flag(name: str) -> str:
    """``lora-r`` → ``lora_r``; a name from another trainer → ftimg's (flags.json ``renamed``)."""
    name = name.replace("-", "_")
    return renamed_flags().get(name, name)


def normalize_flags(tokens: list) -> list:
    """Split ``--a=b``, turn dashes into underscores and aliases into current flag names."""
    normalized = []
    for token in tokens:
        if token.startswith("--") and token not in HELP_FLAGS:
            name, has_value, value = token[2:].partition("=")
            normalized.append(f"--{canonical_flag(name)}")
            if has_value:
                normalized.append(value)
        else:
            normalized.append(token)
    return normalized


def retire_flags(tokens: list, known: set) -> list:
    """Rename retired flags to their replacement when this transformers no longer knows them."""
    renames = {f"--{old}": f"--{new}" for old, new in RETIRED_FLAGS.items() if old not in known and new in known}
    return [renames.get(token, token) for token in tokens]


def translate_dispatch_batches(tokens: list) -> list:
    """``--dispatch_batches X`` (seed 000) was folded into ``--accelerator_config`` by transformers."""
    if "--dispatch_batches" not in tokens:
        return tokens
    result, index = [], 0
    dispatch = None
    while index < len(tokens):
        if tokens[index] == "--dispatch_batches":
            has_value = index + 1 < len(tokens) and not tokens[index + 1].startswith("--")
            dispatch = tokens[index + 1].lower() in TRUE_STRINGS if has_value else True
            index += 2 if has_value else 1
            continue
        result.append(tokens[index])
        index += 1
    if "--accelerator_config" in result:
        raise JobError("give either --dispatch_batches or --accelerator_config, not both; "
                       "put dispatch_batches inside --accelerator_config")
    return result + ["--accelerator_config", json.dumps({"dispatch_batches": dispatch})]


def launcher_setting(argv: list, name: str):
    """The value of a launcher flag (flags.json ``launcher``) on the command line, ``'true'`` when bare, or None."""
    for flag, value, _group in split_flags(normalize_flags(argv)):
        if flag == name:
            return bool_word("true" if value is None else value)
    return None


def flag_names(tokens: list) -> list:
    """The flag names (without ``--``) in argv order."""
    return [token[2:] for token in tokens if token.startswith("--") and token not in HELP_FLAGS]


def unknown_names(names, known: set, prefix: str = "") -> list:
    """Describe each unknown name, with the closest known spelling when there is one."""
    problems = []
    for name in dict.fromkeys(names):
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1)
        problems.append(f"'{prefix}{name}'" + (f" (did you mean '{prefix}{close[0]}'?)" if close else ""))
    return problems


def flag_value(tokens: list, name: str):
    """The last value given for ``--name`` (``'True'`` for a bare boolean flag), or None."""
    value = None
    for index, token in enumerate(tokens):
        if token == f"--{name}":
            has_value = index + 1 < len(tokens) and not tokens[index + 1].startswith("--")
            value = tokens[index + 1] if has_value else "True"
    return value


def is_true(value) -> bool:
    return value is not None and str(value).lower() in TRUE_STRINGS


def replace_flag_value(tokens: list, name: str, new_value: str) -> list:
    """Replace every value of ``--name`` with ``new_value``."""
    result = list(tokens)
    for index, token in enumerate(result):
        if token == f"--{name}" and index + 1 < len(result) and not result[index + 1].startswith("--"):
            result[index + 1] = new_value
    return result


def resolve_deepspeed(tokens: list, shipped_dir: Path) -> list:
    """Let ``--deepspeed`` name a shipped config (``zero2``) or a path; fail early on a missing file."""
    value = flag_value(tokens, "deepspeed")
    if value is None:
        return tokens
    shipped = sorted(path.stem for path in Path(shipped_dir).glob("*.json"))
    if value in shipped:
        return replace_flag_value(tokens, "deepspeed", str(Path(shipped_dir) / f"{value}.json"))
    if Path(value).is_file():
        return tokens
    raise JobError(f"--deepspeed {value}: no such file. Give a path to a DeepSpeed JSON config "
                   f"or one of the shipped configs: {', '.join(shipped)}")


def assemble_argv(defaults: dict, argv: list, known: set, deepspeed_dir: Path) -> list:
    """Merge job defaults, the optional YAML config (first argument) and CLI flags into one argv.

    Unknown YAML keys and unknown flags are collected and reported together.
    """
    config_path, cli_tokens = split_config_file(argv)
    config = load_config_file(config_path) if config_path else {}
    canonical_config = {canonical_flag(str(key)): value for key, value in config.items()}
    canonical_config = {RETIRED_FLAGS[name] if name in RETIRED_FLAGS and name not in known else name: value
                        for name, value in canonical_config.items()}
    canonical_config, from_config = apply_flag_table_to_config(canonical_config, known)
    from_cli = apply_flag_table(retire_flags(normalize_flags(cli_tokens), known), known)
    cli_tokens = from_cli.tokens
    problems = [f"{config_path}: {problem}" for problem in from_config.problems] + from_cli.problems
    bad_keys = unknown_names(
        [name for name in canonical_config if name != "dispatch_batches"], known)
    if bad_keys:
        problems.append(f"unknown key(s) in {config_path}: {', '.join(bad_keys)}")
    bad_flags = unknown_names(
        [name for name in flag_names(cli_tokens) if name != "dispatch_batches"], known, prefix="--")
    if bad_flags:
        problems.append(f"unknown flag(s): {', '.join(bad_flags)}. Run with --help to list the flags")
    if len(problems) == 1:
        raise JobError(problems[0])
    if problems:
        raise JobError("these flags cannot be used:\n  - " + "\n  - ".join(problems))
    # What a translated flag stands for ranks just above the defaults: a flag given explicitly wins.
    implied = {**from_config.implied, **from_cli.implied}
    tokens = mapping_tokens(defaults) + mapping_tokens(implied) + mapping_tokens(canonical_config) + cli_tokens
    tokens = translate_dispatch_batches(tokens)
    return resolve_deepspeed(tokens, deepspeed_dir)
