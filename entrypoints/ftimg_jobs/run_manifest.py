"""Build and write ``run.json``: what ran, on what, with which stack and data, and how it went.

Pure apart from reading package metadata, hashing data files and writing the
file; never imports torch (the job passes device facts in).
"""

import hashlib
import dataclasses
import importlib.metadata
import json
from pathlib import Path

# The one rule, shared with the host tool: HF_TOKEN and hub_token are secrets, max_new_tokens is not.
from ftimg_jobs.secrets import is_secret

RECORDED_PACKAGES = ("torch", "transformers", "peft", "accelerate", "deepspeed", "bitsandbytes",
                     "tokenizers", "datasets", "flash-attn")
RECORDED_ENV_PREFIXES = ("FTIMG_", "CUDA_VISIBLE_DEVICES", "NNODES", "NODE_RANK", "NPROC_PER_NODE",
                         "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NCCL_")


def scrub_secrets(value):
    """Drop every mapping entry whose key names a secret, at any depth."""
    if isinstance(value, dict):
        return {key: scrub_secrets(item) for key, item in value.items() if not is_secret(key)}
    if isinstance(value, (list, tuple)):
        return [scrub_secrets(item) for item in value]
    return value


def package_versions(names=RECORDED_PACKAGES) -> dict:
    """Installed version of each package, or None when absent."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def image_info(env: dict) -> dict:
    """The image profile and lock hash the image sets; None outside an image."""
    return {"profile": env.get("FTIMG_PROFILE") or None, "lock_hash": env.get("FTIMG_LOCK_HASH") or None}


def recorded_env(env: dict) -> dict:
    """The launch-relevant environment, secrets removed."""
    return scrub_secrets({key: value for key, value in sorted(env.items())
                          if key.startswith(RECORDED_ENV_PREFIXES)})


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_files_info(paths: dict) -> dict:
    """``{role: {"path", "sha256"}}`` for each data file that was given."""
    return {role: {"path": str(path), "sha256": file_sha256(path)} for role, path in paths.items() if path}


def jsonable(value):
    """Make parsed arguments JSON-friendly (enums, paths and other objects become strings)."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(getattr(value, "value", value))


def flat_args(instances) -> dict:
    """Every parsed flag, our dataclasses and TrainingArguments alike."""
    merged = {}
    for instance in instances:
        merged.update(instance.to_dict() if hasattr(instance, "to_dict") else dataclasses.asdict(instance))
    return merged


def build_manifest(*, job: str, args: dict, env: dict, status: str, exit_code: int, metrics: dict,
                   data_files: dict, attention: dict, device: dict, world_size: int,
                   wall_time_s: float, peak_gpu_memory_bytes, global_step: int, resumed_from,
                   extra: dict = None) -> dict:
    """Assemble the run manifest; ``args`` and ``env`` are scrubbed of secrets here."""
    manifest = {
        "job": job,
        "status": status,
        "exit_code": exit_code,
        "args": scrub_secrets(jsonable(args)),
        "env": recorded_env(env),
        "versions": package_versions(),
        "image": image_info(env),
        "data": data_files,
        "attention": attention,
        "device": device,
        "world_size": world_size,
        "global_step": global_step,
        "resumed_from": resumed_from,
        "metrics": jsonable(metrics),
        "wall_time_s": round(wall_time_s, 3),
        "peak_gpu_memory_bytes": peak_gpu_memory_bytes,
    }
    manifest.update(extra or {})
    return manifest


def write_manifest(output_dir, manifest: dict) -> Path:
    path = Path(output_dir) / "run.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
