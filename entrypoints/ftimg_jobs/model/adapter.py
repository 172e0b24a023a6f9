"""What a LoRA adapter directory says about itself (torch-free)."""

import json
import os

from ftimg_jobs.errors import JobError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")


def read_adapter_config(adapter_dir: str) -> dict:
    config_path = os.path.join(adapter_dir, "adapter_config.json")
    if not os.path.isfile(config_path):
        raise JobError(
            f"{adapter_dir} is not a LoRA adapter: it has no adapter_config.json. "
            "Pass the directory a lora-sft/qlora-sft run saved (its output_dir or a checkpoint-N inside it)."
        )
    with open(config_path, encoding="utf-8") as handle:
        return json.load(handle)


def adapter_base_model(adapter_dir: str) -> str:
    """The base model recorded in `adapter_dir`/adapter_config.json, for a missing --model_name_or_path."""
    base = read_adapter_config(adapter_dir).get("base_model_name_or_path")
    if not base:
        raise JobError(f"{adapter_dir}/adapter_config.json records no base_model_name_or_path; "
                       "pass --model_name_or_path")
    return base


def adapter_task_type(adapter_dir: str) -> str:
    """peft's task type, e.g. CAUSAL_LM (sft jobs) or SEQ_CLS (cls jobs)."""
    return read_adapter_config(adapter_dir).get("task_type") or "CAUSAL_LM"


def has_tokenizer(directory: str) -> bool:
    """True when `directory` holds a saved tokenizer (training saves one next to the adapter)."""
    return any(os.path.isfile(os.path.join(directory, name)) for name in TOKENIZER_FILES)


def adapter_training_job(adapter_dir: str):
    """The job that trained the adapter (e.g. "qlora-sft"), from its training run's run.json, or None.

    Training writes run.json into its output_dir; the adapter is that directory or a checkpoint-N inside it.
    """
    for directory in (adapter_dir, os.path.dirname(os.path.abspath(adapter_dir))):
        path = os.path.join(directory, "run.json")
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as handle:
                    return json.load(handle).get("job")
            except (OSError, ValueError):
                return None
    return None
