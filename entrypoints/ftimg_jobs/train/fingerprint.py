"""What shapes a checkpoint (its fingerprint) and what may change when a run resumes; torch-free.

A checkpoint may only be resumed by the same run: the same job, base model (a path compared normalised:
``/m/`` is ``/m``), adaptation (method, LoRA rank/alpha/targets, quantization), max length, training data
(train/data_digest.py), a classifier's task type (its head's shape follows from it and the data) and the
DeepSpeed ZeRO stage (it decides how optimizer state is sharded on disk). Those are the fingerprint;
a difference stops the job before anything is loaded. Settings in RESUMABLE_SETTINGS (batch size on
another GPU count, logging, saving, max_steps to extend a run) may change; the changes are recorded.

``ftimg_fingerprint.json`` holds both and is written into every checkpoint and the output directory.
"""

import json
import os
from pathlib import Path
from typing import Optional

FINGERPRINT_FILE = "ftimg_fingerprint.json"
FORMAT_VERSION = 1
RESUMABLE_SETTINGS = ("per_device_train_batch_size", "gradient_accumulation_steps", "max_steps",
                      "num_train_epochs", "learning_rate", "logging_steps", "save_steps", "save_total_limit",
                      "eval_steps", "eval_strategy", "save_strategy")
# Not "--resume_from_checkpoint none next to them": a fresh run would write its own checkpoint-N over the
# other run's and save_total_limit would rotate the other run's away.
WAYS_OUT = ("--overwrite_output_dir to remove the other run's checkpoints (this run's own are kept and resumed), "
            "or a new --output_dir")


def training_method(lora_args) -> str:
    if not lora_args.use_lora:
        return "full"
    return "qlora" if lora_args.q_lora else "lora"


def normalized_model(name):
    """``/models/m/`` and ``/models/./m`` are ``/models/m``; a hub id (``org/name``) is unchanged."""
    return os.path.normpath(name) if isinstance(name, str) and name else name


def zero_stage(deepspeed):
    """The ZeRO stage of a --deepspeed config (a JSON path or a dict), None without DeepSpeed."""
    if not deepspeed:
        return None
    config = deepspeed
    if not isinstance(config, dict):
        try:
            config = json.loads(Path(deepspeed).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return str(deepspeed)  # checked elsewhere; the config's name is the best we know
    stage = (config.get("zero_optimization") or {}).get("stage", 0) if isinstance(config, dict) else None
    return stage if isinstance(stage, int) else str(stage)


def build_fingerprint(job: str, model_args, lora_args, data_args, data_sha256: str, training_args=None) -> dict:
    """The settings that shape a checkpoint; LoRA shape only counts when LoRA is used."""
    method = training_method(lora_args)
    uses_lora = method != "full"
    return {
        "job": job,
        "base_model": normalized_model(model_args.model_name_or_path),
        "method": method,
        "lora_r": lora_args.lora_r if uses_lora else None,
        "lora_alpha": lora_args.lora_alpha if uses_lora else None,
        "lora_target_modules": sorted(lora_args.lora_target_modules) if uses_lora and lora_args.lora_target_modules
        else ("all-linear" if uses_lora else None),
        "quantization": "nf4" if method == "qlora" else None,
        "model_max_length": data_args.model_max_length,
        "data_sha256": data_sha256,
        "task_type": getattr(data_args, "task_type", None),  # cls only: regression has one output, classes N
        "zero_stage": zero_stage(getattr(training_args, "deepspeed", None)),
    }


def same_run(before: dict, now: dict) -> bool:
    """A key the earlier fingerprint lacks (written before it was recorded) counts as None."""
    return not differences(before, now)


def resumable_settings(training_args, world_size: int) -> dict:
    """``world_size`` comes from the launcher's environment: asking TrainingArguments would start torch.distributed."""
    return {"world_size": world_size, **{name: getattr(training_args, name, None) for name in RESUMABLE_SETTINGS}}


def show(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    text = str(getattr(value, "value", value))
    # A sha256 reads best shortened; the full values are in the fingerprint files.
    return text[:12] if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text


def differences(before: dict, now: dict) -> list:
    """``["lora_r 8 → 16", ...]`` for every key whose value differs, in ``now``'s order."""
    keys = list(now) + [key for key in before if key not in now]
    return [f"{key} {show(before.get(key))} → {show(now.get(key))}"
            for key in keys if jsonable(before.get(key)) != jsonable(now.get(key))]


def changed_settings(before: dict, now: dict) -> dict:
    """``{name: [before, now]}`` for resumable settings that differ (recorded in run.json)."""
    return {key: [before.get(key), now.get(key)] for key in now
            if key in before and jsonable(before.get(key)) != jsonable(now.get(key))}


def jsonable(value):
    """Compare as the file stores it (enums as their value, tuples as lists)."""
    return json.loads(json.dumps(value, default=lambda item: str(getattr(item, "value", item))))


def mismatch_message(checkpoint: str, before: dict, now: dict) -> str:
    return (f"{checkpoint} belongs to a different run ({'; '.join(differences(before, now))}), so it cannot be "
            f"resumed: use {WAYS_OUT}")


def fingerprint_document(fingerprint: dict, settings: dict) -> dict:
    return {"format": FORMAT_VERSION, "fingerprint": fingerprint, "settings": jsonable(settings)}


def write_fingerprint(directory, document: dict) -> Path:
    """Write atomically (temp + rename) so a kill never leaves half a file."""
    path = Path(directory) / FINGERPRINT_FILE
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path


def read_fingerprint(directory) -> Optional[dict]:
    """The document in ``directory``, or None when there is none (a checkpoint from before fingerprints)."""
    path = Path(directory) / FINGERPRINT_FILE
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return document if isinstance(document, dict) and isinstance(document.get("fingerprint"), dict) else None
