"""From a job's data flags (and ``--dataset_spec``) to training and evaluation examples (torch-free).

Flags hold the same keys as a spec (``--data_format``, ``--columns``,
``--system_prompt``, ``--prompt_template``, ``--answer_template``,
``--use_chat_template``, ``--template_variables``); given with a spec they apply
over every dataset in it. ``--eval_data_path`` is converted like the spec's
``eval:`` entry, else like its first dataset.
"""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from ftimg_jobs.data.formats import Conversion, detect_format, load_sft_examples, to_sft_example
from ftimg_jobs.data.labels import load_cls_records
from ftimg_jobs.data.mixing import mix_by_ratio
from ftimg_jobs.data.records import read_records
from ftimg_jobs.data.spec import DatasetSource, build_conversion, load_spec_document, parse_spec
from ftimg_jobs.errors import JobError

FLAG_KEYS = {"data_format": "format", "columns": "columns", "system_prompt": "system_prompt",
             "prompt_template": "prompt_template", "answer_template": "answer_template",
             "use_chat_template": "use_chat_template", "template_variables": "variables"}


@dataclass(frozen=True)
class LoadedData:
    format: str  # "alpaca", or "alpaca+text" for a mix
    train: list
    eval: Optional[list]  # None: no evaluation data was named (the job may split some off)
    notes: tuple = ()  # lines for the log (mix counts)
    files: dict = None  # role → data file, for run.json's checksums (folders are left out)


def flag_settings(data_args) -> dict:
    """The spec keys given as flags (a flag left at its default says nothing)."""
    settings = {}
    for flag, key in FLAG_KEYS.items():
        value = getattr(data_args, flag, None)
        if value is not None and value != "" and not (flag == "data_format" and value == "auto"):
            settings[key] = value
    return settings


def with_flags(conversion: Conversion, settings: dict) -> Conversion:
    if not settings:
        return conversion
    problems = []
    template_flags = {"prompt_template", "answer_template"} & set(settings)
    merged = build_conversion(conversion, settings, "command-line flags", problems)
    if problems:
        raise JobError("; ".join(problems))
    return merged if template_flags else replace(merged, origin=conversion.origin)


def data_sources(data_args, data_path: Optional[str]) -> tuple:
    """``(training sources, eval source or None)`` from the flags and the optional spec file."""
    settings = flag_settings(data_args)
    spec_path = getattr(data_args, "dataset_spec", None)
    if spec_path:
        document = load_spec_document(spec_path)
        sources, eval_source = parse_spec(document, spec_path, Path(spec_path).resolve().parent,
                                          fallback_paths=(data_path,) if data_path else ())
    else:
        sources = (DatasetSource((data_path,), Conversion(origin="--data_path"), where=str(data_path)),)
        eval_source = None
    sources = tuple(replace(source, conversion=with_flags(source.conversion, settings)) for source in sources)
    eval_path = getattr(data_args, "eval_data_path", None)
    if eval_path:
        like = eval_source.conversion if eval_source else sources[0].conversion
        eval_source = DatasetSource((eval_path,), like, where="--eval_data_path")
    elif eval_source:
        eval_source = replace(eval_source, conversion=with_flags(eval_source.conversion, settings))
    return sources, eval_source


def files_of(data_args, sources: tuple, eval_source) -> dict:
    files = {"dataset_spec": getattr(data_args, "dataset_spec", None)}
    paths = [path for source in sources for path in source.paths]
    for index, path in enumerate(paths, start=1):
        files["train" if len(paths) == 1 else f"train[{index}]"] = path if Path(path).is_file() else None
    for path in eval_source.paths if eval_source else ():
        files["eval"] = path if Path(path).is_file() else None
    return {role: path for role, path in files.items() if path}


def source_records(source: DatasetSource) -> list:
    records = [record for path in source.paths for record in read_records(path)]
    return records[:source.num_samples] if source.num_samples else records


def sft_examples(source: DatasetSource) -> tuple:
    if len(source.paths) == 1 and not source.num_samples:
        return load_sft_examples(source.paths[0], source.conversion)
    records = source_records(source)
    fmt = detect_format(records[0], source.conversion)
    return fmt, [to_sft_example(record, fmt, source.conversion) for record in records]


def combine(parts: list, sources: tuple, seed: int) -> tuple:
    """Several datasets: mixed by ratio when given, else concatenated; returns ``(examples, notes)``."""
    if len(parts) == 1:
        return parts[0], ()
    if sources[0].ratio is None:
        return [item for part in parts for item in part], ()
    mixed, counts = mix_by_ratio(parts, [source.ratio for source in sources], seed)
    notes = tuple(f"mix: {count} of {len(part)} from {source.where} (ratio {source.ratio:g})"
                  for part, count, source in zip(parts, counts, sources))
    return mixed, notes


def load_sft_data(data_args, data_path: Optional[str], seed: int) -> LoadedData:
    sources, eval_source = data_sources(data_args, data_path)
    loaded = [sft_examples(source) for source in sources]
    train, notes = combine([examples for _, examples in loaded], sources, seed)
    formats = "+".join(dict.fromkeys(fmt for fmt, _ in loaded))
    eval_examples = sft_examples(eval_source)[1] if eval_source else None
    return LoadedData(formats, train, eval_examples, notes, files_of(data_args, sources, eval_source))


def load_cls_data(data_args, data_path: Optional[str], seed: int) -> LoadedData:
    sources, eval_source = data_sources(data_args, data_path)
    parts = [[record for path in source.paths for record in load_cls_records(path, source.conversion)]
             [:source.num_samples or None] for source in sources]
    train, notes = combine(parts, sources, seed)
    eval_records = [record for path in eval_source.paths for record in load_cls_records(path, eval_source.conversion)] \
        if eval_source else None
    return LoadedData("cls", train, eval_records, notes, files_of(data_args, sources, eval_source))


def prompt_conversion(data_args) -> Conversion:
    """How the infer job reads its input records: the spec's eval entry, else its first dataset, plus flags."""
    settings = flag_settings(data_args)
    conversion = Conversion(origin="--input_path")
    if getattr(data_args, "dataset_spec", None):
        document = load_spec_document(data_args.dataset_spec)
        sources, eval_source = parse_spec(document, data_args.dataset_spec,
                                          Path(data_args.dataset_spec).resolve().parent, fallback_paths=("-",),
                                          check_paths=False)
        conversion = (eval_source or sources[0]).conversion
    return with_flags(conversion, settings)
