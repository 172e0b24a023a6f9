"""What shapes a checkpoint (its fingerprint) and what may change when a run resumes; torch-free.

A checkpoint may only be resumed by the same run: the same job, base model, adaptation (method,
LoRA rank/alpha/targets, quantization), max length and training data. Those are the fingerprint;
a difference stops the job before anything is loaded. Settings in RESUMABLE_SETTINGS (batch size on
another GPU count, logging, saving, max_steps to extend a run) may change; the changes are recorded.

``ftimg_fingerprint.json`` holds both and is written into every checkpoint and the output directory.
"""

import json
from pathlib import Path
from typing import Optional

FINGERPRINT_FILE = "ftimg_fingerprint.json"
FORMAT_VERSION = 1
RESUMABLE_SETTINGS = ("per_device_train_batch_size", "gradient_accumulation_steps", "max_steps",
                      "num_train_epochs", "learning_rate", "logging_steps", "save_steps", "save_total_limit",
                      "eval_steps", "eval_strategy", "save_strategy")
WAYS_OUT = ("--resume_from_checkpoint none to start fresh next to the existing checkpoints, "
            "--overwrite_output_dir to replace them, or a new --output_dir")


def training_method(lora_args) -> str:
    if not lora_args.use_lora:
        return "full"
    return "qlora" if lora_args.q_lora else "lora"


def build_fingerprint(job: str, model_args, lora_args, data_args, data_sha256: str) -> dict:
    """The settings that shape a checkpoint; LoRA shape only counts when LoRA is used."""
    method = training_method(lora_args)
    uses_lora = method != "full"
    return {
        "job": job,
        "base_model": model_args.model_name_or_path,
        "method": method,
        "lora_r": lora_args.lora_r if uses_lora else None,
        "lora_alpha": lora_args.lora_alpha if uses_lora else None,
        "lora_target_modules": sorted(lora_args.lora_target_modules) if uses_lora and lora_args.lora_target_modules
        else ("all-linear" if uses_lora else None),
        "quantization": "nf4" if method == "qlora" else None,
        "model_max_length": data_args.model_max_length,
        "data_sha256": data_sha256,
    }


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
