"""A dataset description as data: ``--dataset_spec FILE`` (YAML or JSON) and the same keys as flags (torch-free).

A spec is one dataset (its keys at the top level) or several under ``datasets:``,
mixed by ``ratio``; top-level keys are defaults every dataset inherits, and an
optional ``eval:`` entry describes the evaluation data. Keys a user brings from
LLaMA-Factory (``file_name``, ``formatting``, ``columns``, ``tags``, a whole
``dataset_info.json`` or ``dataset_info: FILE`` + ``name``) and axolotl
(``path``, ``type``, ``field_*``, ``message_property_mappings``) are read too.
Relative paths are relative to the spec file's folder. Unknown keys are errors
naming the file and the closest known key; all problems are reported at once.
"""

import difflib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import yaml

from ftimg_jobs.data.formats import Conversion, canonical_format
from ftimg_jobs.errors import JobError

# spec key → Conversion/DatasetSource attribute; several spellings per attribute.
KEY_SYNONYMS = {
    "data_path": "paths", "path": "paths", "paths": "paths", "file_name": "paths", "data_files": "paths",
    "data_format": "format", "format": "format", "formatting": "format", "type": "format",
    "columns": "columns", "tags": "tags",
    "system_prompt": "system_prompt", "system": "system_prompt",
    "prompt_template": "prompt_template", "answer_template": "answer_template",
    "use_chat_template": "use_chat_template", "chat_template": "use_chat_template",
    "template_variables": "variables", "variables": "variables",
    "ratio": "ratio", "num_samples": "num_samples",
}
# axolotl's per-field keys → our column roles.
AXOLOTL_FIELDS = {"field_instruction": "prompt", "field_input": "query", "field_output": "response",
                  "field_system": "system", "field_messages": "messages", "field": "text", "field_text": "text",
                  "field_label": "label"}
AXOLOTL_TAGS = {"message_field_role": "role_tag", "message_field_content": "content_tag"}
# Keys of those tools that change nothing here (the loader is picked from the file itself).
IGNORED_KEYS = {"ds_type", "split", "load_from_disk"}
REFUSED_KEYS = {
    "hf_hub_url": "datasets are read from disk, never downloaded; download it and give file_name",
    "ms_hub_url": "datasets are read from disk, never downloaded; download it and give file_name",
    "om_hub_url": "datasets are read from disk, never downloaded; download it and give file_name",
    "script_url": "loading scripts are not run; give the data files",
    "ranking": "preference (ranking) data trains reward/DPO models, which ftimg jobs do not do",
}
COLUMN_ROLES = ("prompt", "query", "response", "system", "history", "messages", "text", "label", "tools")
TAG_NAMES = ("role_tag", "content_tag", "user_tag", "assistant_tag", "system_tag", "observation_tag",
             "function_tag")
STRUCTURE_KEYS = {"datasets", "eval", "dataset_info", "name"}
RATIO_TOLERANCE = 0.01


@dataclass(frozen=True)
class DatasetSource:
    """One dataset: its files or folders, how its records convert, and its share of a mix."""

    paths: tuple
    conversion: Conversion
    ratio: Optional[float] = None
    num_samples: Optional[int] = None
    where: str = "data"


def load_spec_document(path: str) -> dict:
    spec_path = Path(path)
    if not spec_path.is_file():
        raise JobError(f"--dataset_spec {path}: no such file")
    text = spec_path.read_text(encoding="utf-8")
    try:
        document = json.loads(text) if spec_path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as error:
        raise JobError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise JobError(f"{where}: invalid YAML: {getattr(error, 'problem', error)}") from None
    if not isinstance(document, dict):
        raise JobError(f"{path}: a dataset spec must be a mapping of keys to values, got {type(document).__name__}")
    return document


def is_dataset_info(document: dict) -> bool:
    """A LLaMA-Factory dataset_info.json: named entries, each with a file name or hub address."""
    return bool(document) and all(isinstance(entry, dict) and ({"file_name", "hf_hub_url", "ms_hub_url"} & set(entry))
                                  for entry in document.values())


def text_mapping(value, key: str, where: str, problems: list) -> dict:
    """A mapping given as a dict, a JSON object string, or ``a=b,c=d`` (the flag form)."""
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("{"):
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError as error:
                problems.append(f"{where}: {key} is not valid JSON ({error.msg})")
                return {}
        else:
            pairs = [item.partition("=") for item in stripped.split(",") if item.strip()]
            if any(not sep for _, sep, _ in pairs):
                problems.append(f"{where}: {key} must be a mapping (name=value,name=value or a JSON object)")
                return {}
            value = {name.strip(): mapped.strip() for name, _, mapped in pairs}
    if not isinstance(value, dict):
        problems.append(f"{where}: {key} must be a mapping, got {type(value).__name__}")
        return {}
    return dict(value)


def unknown_key_problem(key: str, where: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f"{where}: unknown key '{key}'" + (f" (did you mean '{close[0]}'?)" if close else "")


def entry_settings(entry: dict, where: str, problems: list) -> dict:
    """Spec keys of one entry → attribute values (``paths``, ``format``, ``columns``, ...)."""
    settings = {}
    columns, tags = {}, {}
    for key, value in entry.items():
        if key in STRUCTURE_KEYS or key in IGNORED_KEYS:
            continue
        if key in REFUSED_KEYS:
            problems.append(f"{where}: '{key}' is not supported: {REFUSED_KEYS[key]}")
        elif key in AXOLOTL_FIELDS:
            columns[AXOLOTL_FIELDS[key]] = value
        elif key in AXOLOTL_TAGS:
            tags[AXOLOTL_TAGS[key]] = value
        elif key == "message_property_mappings":
            mapping = text_mapping(value, key, where, problems)
            tags.update({f"{name}_tag": mapped for name, mapped in mapping.items() if name in ("role", "content")})
        elif key in KEY_SYNONYMS:
            settings[KEY_SYNONYMS[key]] = value
        else:
            problems.append(unknown_key_problem(key, where, set(KEY_SYNONYMS) | STRUCTURE_KEYS | set(AXOLOTL_FIELDS)))
    columns.update(text_mapping(settings.pop("columns", None), "columns", where, problems))
    tags.update(text_mapping(settings.pop("tags", None), "tags", where, problems))
    if columns:
        settings["columns"] = columns
    if tags:
        settings["tags"] = tags
    return settings


def chat_template_flag(value, where: str, problems: list) -> bool:
    """``use_chat_template``: a boolean, or axolotl's ``chat_template: tokenizer_default``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "tokenizer_default"):
        return value.lower() != "false"
    problems.append(f"{where}: use_chat_template must be true or false (the tokenizer's own template), got {value!r}")
    return True


def build_conversion(base: Conversion, settings: dict, where: str, problems: list) -> Conversion:
    changes = {}
    if "format" in settings:
        try:
            changes["format"] = canonical_format(str(settings["format"]), where)
        except JobError as error:
            problems.append(str(error))
    for name in ("system_prompt", "prompt_template", "answer_template"):
        if name in settings:
            if not isinstance(settings[name], str):
                problems.append(f"{where}: {name} must be a string, got {type(settings[name]).__name__}")
            else:
                changes[name] = settings[name]
    if "use_chat_template" in settings:
        changes["use_chat_template"] = chat_template_flag(settings["use_chat_template"], where, problems)
    if "variables" in settings:
        changes["variables"] = {**base.variables,
                                **text_mapping(settings["variables"], "template_variables", where, problems)}
    for name, allowed in (("columns", COLUMN_ROLES), ("tags", TAG_NAMES)):
        if name in settings:
            mapping = text_mapping(settings[name], name, where, problems)
            problems.extend(unknown_key_problem(key, f"{where} {name}", allowed) for key in mapping
                            if key not in allowed)
            changes[name] = {**getattr(base, name), **mapping}
            if name == "columns":
                changes["column_origins"] = {**base.column_origins, **{role: where for role in mapping}}
    return replace(base, origin=where, **changes)


def resolve_paths(value, base_dir: Path, where: str, problems: list, check: bool = True) -> tuple:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(item, str) and item for item in values):
        problems.append(f"{where}: data_path must be a file or folder path, or a list of them")
        return ()
    paths = tuple(str(path if path.is_absolute() else base_dir / path) for path in map(Path, values))
    for path in paths if check else ():
        if not Path(path).exists():
            problems.append(f"{where}: data file {path} not found (relative paths are relative to the spec's folder)")
    return paths


def source_of(settings: dict, conversion: Conversion, base_dir: Path, where: str, problems: list,
              fallback_paths: tuple = (), check_paths: bool = True) -> DatasetSource:
    paths = resolve_paths(settings["paths"], base_dir, where, problems, check_paths) if "paths" in settings \
        else fallback_paths
    if not paths:
        problems.append(f"{where}: no data_path (give data_path, or file_name as in dataset_info.json)")
    ratio, samples = settings.get("ratio"), settings.get("num_samples")
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0):
        problems.append(f"{where}: ratio must be a positive number (a share of the mix), got {ratio!r}")
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        problems.append(f"{where}: num_samples must be a positive integer, got {samples!r}")
    return DatasetSource(paths, conversion, ratio, samples, where)


def dataset_info_entries(entry: dict, base_dir: Path, where: str, problems: list) -> tuple:
    """``dataset_info: FILE`` + ``name`` → that entry of a LLaMA-Factory dataset_info.json, and its folder."""
    info_path = Path(entry["dataset_info"])
    info_path = info_path if info_path.is_absolute() else base_dir / info_path
    document = load_spec_document(str(info_path))
    name = entry.get("name")
    if name not in document:
        problems.append(f"{where}: dataset '{name}' is not in {info_path} "
                        f"(it has {', '.join(sorted(document)) or 'no entries'})")
        return {}, info_path.parent
    return dict(document[name]), info_path.parent


def entry_source(entry, index: int, base: Conversion, base_dir: Path, origin: str, problems: list,
                 check_paths: bool = True):
    name = entry.get("_name") if isinstance(entry, dict) else None
    where = f"{origin} datasets[{index}]" + (f" ({name})" if name else "")
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be a mapping with data_path, format, ...")
        return DatasetSource((), base, where=where)
    entry = {key: value for key, value in entry.items() if key != "_name"}
    entry_dir = base_dir
    if "dataset_info" in entry:
        info_entry, entry_dir = dataset_info_entries(entry, base_dir, where, problems)
        entry = {**info_entry, **{key: value for key, value in entry.items() if key not in ("dataset_info", "name")}}
    settings = entry_settings(entry, where, problems)
    return source_of(settings, build_conversion(base, settings, where, problems), entry_dir, where, problems,
                     check_paths=check_paths)


def check_ratios(sources: list, origin: str, problems: list) -> None:
    ratios = [source.ratio for source in sources]
    if all(ratio is None for ratio in ratios):
        return
    if any(ratio is None for ratio in ratios):
        missing = [source.where for source in sources if source.ratio is None]
        problems.append(f"{origin}: give every dataset a ratio or none; missing on {', '.join(missing)}")
        return
    total = sum(ratios)
    if abs(total - 1) > RATIO_TOLERANCE:
        problems.append(f"{origin}: ratios sum to {total:g}; give each dataset its share of the mix as fractions "
                        f"that sum to 1 (e.g. 0.7 and 0.3)")


def parse_spec(document: dict, origin: str, base_dir: Path, defaults: Conversion = Conversion(),
               fallback_paths: tuple = (), check_paths: bool = True) -> tuple:
    """A spec document → ``(training sources, eval source or None)``; every problem reported at once.

    ``check_paths`` False: only the conversion is wanted (infer reads its own --input_path).
    """
    problems = []
    if is_dataset_info(document):
        document = {"datasets": [{**entry, "_name": name} for name, entry in document.items()]}
    top_settings = entry_settings({k: v for k, v in document.items() if k not in ("datasets", "eval")},
                                  origin, problems)
    base = build_conversion(defaults, top_settings, origin, problems)
    entries = document.get("datasets")
    sources = []
    if entries is None:
        sources.append(source_of(top_settings, base, base_dir, origin, problems, fallback_paths, check_paths))
    elif not isinstance(entries, list) or not entries:
        problems.append(f"{origin}: datasets must be a non-empty list of dataset entries")
    else:
        for index, entry in enumerate(entries, start=1):
            sources.append(entry_source(entry, index, base, base_dir, origin, problems, check_paths))
    check_ratios(sources, origin, problems)
    eval_source = None
    if "eval" in document:
        entry = document["eval"]
        entry = {"data_path": entry} if isinstance(entry, (str, list)) else entry
        if not isinstance(entry, dict):
            problems.append(f"{origin} eval: must be a path or a mapping with data_path, format, ...")
        else:
            where = f"{origin} eval"
            settings = entry_settings(entry, where, problems)
            eval_source = source_of(settings, build_conversion(base, settings, where, problems), base_dir, where,
                                    problems, check_paths=check_paths)
    if problems:
        raise JobError(f"dataset spec {origin}: " + ("\n  - " + "\n  - ".join(problems) if len(problems) > 1
                                                     else problems[0]))
    return tuple(sources), eval_source
