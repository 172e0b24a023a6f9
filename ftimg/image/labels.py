"""Image names, tags, labels and build arguments. Pure: no I/O."""

from __future__ import annotations

import hashlib
import json

from ftimg import __version__
from ftimg.lock.lockfile import LockedProfile

TRAIN_REPO = "ftimg/train"
STACK_REPO = "ftimg/stack"
LABEL_PREFIX = "org.ftimg"
KEY_PACKAGES = ("torch", "deepspeed", "bitsandbytes", "transformers", "peft", "accelerate",
                "xformers", "tokenizers", "datasets", "liger-kernel", "flash-attn")


def short_hash(profile: LockedProfile) -> str:
    return profile.lock_hash()[:12]


def stack_tag(profile: LockedProfile, recipe_digest: str) -> str:
    """The stack image is content-addressed by the lock and its recipe (Dockerfile,
    installer, patches): while neither changes it is reused, never rebuilt."""
    combined = hashlib.sha256(f"{profile.lock_hash()}:{recipe_digest}".encode()).hexdigest()
    return f"{STACK_REPO}:{profile.name}-{combined[:12]}"


def train_tags(profile: LockedProfile) -> list[str]:
    """`ftimg/train:<profile>` plus the lock-hash tag `ftimg/train:<profile>-<hash12>`."""
    return [f"{TRAIN_REPO}:{profile.name}", f"{TRAIN_REPO}:{profile.name}-{short_hash(profile)}"]


def key_versions(profile: LockedProfile) -> dict[str, str]:
    versions = {}
    for name in KEY_PACKAGES:
        artifact = profile.artifact(name)
        if artifact:
            versions[name] = artifact.version
    return versions


def image_labels(profile: LockedProfile, revision: str, optional_status: dict[str, str],
                 jobs: list[dict] | None = None, flag_renames: dict[str, str] | None = None) -> dict[str, str]:
    """OCI labels by which an image describes itself (`ftimg verify` and `ftimg run` read them)."""
    labels = {
        "org.opencontainers.image.title": TRAIN_REPO if jobs is not None else STACK_REPO,
        "org.opencontainers.image.version": __version__,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.description": profile.spec.get("description", "")
        or f"ftimg profile {profile.name}",
        f"{LABEL_PREFIX}.profile": profile.name,
        f"{LABEL_PREFIX}.lock-hash": profile.lock_hash(),
        f"{LABEL_PREFIX}.python": profile.spec["python"],
        f"{LABEL_PREFIX}.base": profile.base_image,
        f"{LABEL_PREFIX}.versions": json.dumps(key_versions(profile), sort_keys=True),
        f"{LABEL_PREFIX}.optional": json.dumps(optional_status, sort_keys=True),
    }
    if jobs is not None:
        labels[f"{LABEL_PREFIX}.jobs"] = json.dumps(jobs, separators=(",", ":"), sort_keys=True)
    if flag_renames:
        labels[f"{LABEL_PREFIX}.flags"] = json.dumps(flag_renames, separators=(",", ":"), sort_keys=True)
    return labels


def stack_buildargs(profile: LockedProfile) -> dict[str, str]:
    return {"BASE_IMAGE": profile.base_image, "FTIMG_PROFILE": profile.name,
            "FTIMG_LOCK_HASH": profile.lock_hash()}


def train_buildargs(stack_image: str) -> dict[str, str]:
    return {"STACK_IMAGE": stack_image}

# Labels `ftimg run` reads from images and sets on the job containers it creates (`ftimg ps` finds them).
JOBS_LABEL = f"{LABEL_PREFIX}.jobs"
# The jobs' flag renames (flags.json "renamed"), so `ftimg run` knows --train_data carries a path.
FLAGS_LABEL = f"{LABEL_PREFIX}.flags"
PROFILE_LABEL = f"{LABEL_PREFIX}.profile"
LOCK_HASH_LABEL = f"{LABEL_PREFIX}.lock-hash"
RUN_JOB_LABEL = f"{LABEL_PREFIX}.run.job"
RUN_IMAGE_LABEL = f"{LABEL_PREFIX}.run.image"
RUN_OUTPUT_LABEL = f"{LABEL_PREFIX}.run.output"
