"""`ftimg push`: tag an image for a registry by profile and lock hash, push it, report the digest.

Credentials are the ones `docker login` stored (config.json, credential helpers);
ftimg reads none of them itself, prints none and stores none.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable

from ftimg import engine
from ftimg.errors import EngineError, FtimgError
from ftimg.image.labels import LOCK_HASH_LABEL, PROFILE_LABEL

Progress = Callable[[str], None]
PROGRESS_EVERY_S = 5.0
TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@dataclass
class PushResult:
    refs: list[str] = field(default_factory=list)
    digest: str = ""
    size: int = 0
    seconds: float = 0.0


def split_destination(destination: str) -> tuple[str, str | None]:
    """`REGISTRY/REPO[:TAG]` → (repository, tag or None); a registry port is not a tag."""
    last = destination.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _, tag = destination.rpartition(":")
    else:
        repository, tag = destination, None
    if "/" not in repository or not repository.split("/", 1)[1]:
        raise FtimgError(f"{destination}: expected REGISTRY/REPO[:TAG], e.g. registry.example.com/team/train")
    if tag is not None and not TAG_PATTERN.fullmatch(tag):
        raise FtimgError(f"{destination}: '{tag}' is not a valid tag (letters, digits, _ . -; at most 128)")
    return repository.lower(), tag


def push_tags(labels: dict, tag: str | None, image: str) -> list[str]:
    """The profile tag, the profile-lockhash12 tag and the given tag, in that order, without repeats."""
    profile, lock_hash = labels.get(PROFILE_LABEL), labels.get(LOCK_HASH_LABEL)
    tags = [profile, f"{profile}-{lock_hash[:12]}"] if profile and lock_hash else []
    if tag:
        tags.append(tag)
    if not tags:
        raise FtimgError(f"{image} carries no {PROFILE_LABEL}/{LOCK_HASH_LABEL} labels to tag it by; "
                         "give a tag: REGISTRY/REPO:TAG")
    return list(dict.fromkeys(tags))


class LayerProgress:
    """Folds the engine's per-layer push events into one line every few seconds."""

    def __init__(self, ref: str, on_progress: Progress, every_s: float = PROGRESS_EVERY_S):
        self.ref, self.on_progress, self.every_s = ref, on_progress, every_s
        self.layers: dict[str, tuple[int, int]] = {}
        self.done: set[str] = set()
        self.last = 0.0

    def update(self, event: dict, now: float) -> None:
        layer, status = event.get("id"), event.get("status", "")
        if not layer:
            return
        detail = event.get("progressDetail") or {}
        if detail.get("total"):
            self.layers[layer] = (detail.get("current", 0), detail["total"])
        if status in ("Pushed", "Layer already exists") or status.startswith("Mounted from"):
            self.done.add(layer)
        if now - self.last >= self.every_s:
            self.last = now
            self.on_progress(self.line())

    def line(self) -> str:
        sent = sum(current for current, _ in self.layers.values()) / 1e6
        total = sum(size for _, size in self.layers.values()) / 1e6
        return f"pushing {self.ref}: {len(self.done)} layers done, {sent:.0f}/{total:.0f} MB of layers in flight"


def push_image(client, image: str, destination: str, on_progress: Progress = lambda _: None) -> PushResult:
    """Tag `image` as REGISTRY/REPO:<profile>, :<profile>-<hash12> (and :TAG), push each; the manifest digest."""
    repository, tag = split_destination(destination)
    record = engine.inspect_image(client, image)
    labels, own_tags = record["Config"].get("Labels") or {}, record.get("RepoTags") or []
    result = PushResult()
    started = time.monotonic()
    for push_tag in push_tags(labels, tag, image):
        ref = f"{repository}:{push_tag}"
        new_tag = not engine.image_exists(client, ref)
        engine.tag_image(client, image, ref)
        on_progress(f"pushing {ref}")
        progress = LayerProgress(ref, on_progress)
        digest = ""
        try:
            for event in engine.push_events(client, repository, push_tag):
                progress.update(event, time.monotonic())
                aux = event.get("aux") or {}
                digest, result.size = aux.get("Digest", digest), aux.get("Size", result.size)
        except EngineError as exc:
            if new_tag and own_tags:  # a failed push leaves no registry tag; the image keeps its own tags
                engine.remove_image(client, ref, untag_only=True)
            raise EngineError(f"{exc}. {push_hint(str(exc), repository)}") from None
        if not digest:
            raise EngineError(f"pushing {ref}: the engine reported no digest")
        if result.digest and digest != result.digest:
            raise EngineError(f"pushing {ref}: digest {digest} differs from {result.digest} of the first tag")
        result.digest = digest
        result.refs.append(ref)
        on_progress(f"pushed {ref} {digest}")
    result.seconds = time.monotonic() - started
    return result


def push_hint(message: str, repository: str) -> str:
    """What to do about a failed push, from the engine's message."""
    registry = repository.split("/", 1)[0]
    text = message.lower()
    if any(word in text for word in ("unauthorized", "authentication required", "no basic auth", "denied")):
        return f"Log in first: `docker login {registry}` (ftimg uses the credentials docker stores)"
    if any(word in text for word in ("connection refused", "no such host", "timeout", "dial tcp",
                                     "i/o timeout", "network is unreachable", "server gave http response")):
        return (f"Is the registry {registry} running and reachable from the Docker engine? "
                "(a plain-HTTP registry other than localhost must be listed in the engine's insecure-registries)")
    return f"Check the registry {registry} and your access to {repository}"
