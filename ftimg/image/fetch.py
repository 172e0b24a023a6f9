"""`ftimg fetch`: download every locked artifact into the wheelhouse, verifying each sha256.

A file is written as `<name>.part` and renamed only after its sha256 matches the
lock, so the wheelhouse never holds an unverified file under a real name.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import requests

from ftimg.errors import FetchError
from ftimg.lock.lockfile import Artifact, LockedProfile

CHUNK = 1 << 20
Progress = Callable[[str], None]


@dataclass
class FetchResult:
    downloaded: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    optional_skipped: dict[str, str] = field(default_factory=dict)  # name -> why
    total_bytes: int = 0


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, target: Path, expected_sha256: str, session: requests.Session,
              timeout: float) -> None:
    """Stream `url` to `target`, keeping it only if its sha256 is `expected_sha256`."""
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with session.get(url, stream=True, timeout=timeout) as response:
            response.raise_for_status()
            with partial.open("wb") as handle:
                for chunk in response.iter_content(CHUNK):
                    digest.update(chunk)
                    handle.write(chunk)
    except requests.RequestException as exc:
        partial.unlink(missing_ok=True)
        raise FetchError(f"{target.name}: download from {url} failed: {exc}") from exc
    actual = digest.hexdigest()
    if actual != expected_sha256:
        partial.unlink(missing_ok=True)
        raise FetchError(f"{target.name}: sha256 mismatch: images.lock pins {expected_sha256}, "
                         f"the download from {url} is {actual}. Nothing was kept. If the index "
                         "really changed the file, re-run `ftimg lock`; otherwise retry.")
    partial.replace(target)


def _ensure(artifact: Artifact, wheelhouse: Path, session: requests.Session) -> tuple[str, bool]:
    target = wheelhouse / artifact.filename
    if target.exists():
        if sha256_of(target) == artifact.sha256:
            return artifact.filename, False
        target.unlink()  # a corrupt or foreign file under a locked name: fetch it again
    _download(artifact.url, target, artifact.sha256, session, timeout=120)
    return artifact.filename, True


def fetch_profile(profile: LockedProfile, wheelhouse: Path, on_progress: Progress = lambda _: None,
                  workers: int = 4) -> FetchResult:
    """Make `wheelhouse` hold every artifact of `profile`, each verified against the lock."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    session = requests.Session()
    result = FetchResult()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for filename, downloaded in pool.map(lambda a: _ensure(a, wheelhouse, session), profile.artifacts):
            (result.downloaded if downloaded else result.already_present).append(filename)
            on_progress(f"{'fetched' if downloaded else 'verified'} {filename}")
    result.total_bytes = sum((wheelhouse / a.filename).stat().st_size for a in profile.artifacts)
    for name, optional in profile.optional.items():
        result.optional_skipped.update(_fetch_optional(name, optional, wheelhouse, session, on_progress))
    return result


def _fetch_optional(name: str, optional: dict, wheelhouse: Path, session: requests.Session,
                    on_progress: Progress) -> dict[str, str]:
    """Try an optional wheel (flash-attn); returns {name: why} when it is not available."""
    target = wheelhouse / optional["filename"]
    if not optional.get("sha256"):
        return {name: f"images.lock records no sha256 for {optional['filename']}, so it cannot be "
                      "verified; download it, check it, and add sha256 under "
                      f"[optional.{name}] in the profile spec, then `ftimg lock`"}
    if target.exists() and sha256_of(target) == optional["sha256"]:
        return {}
    try:
        _download(optional["url"], target, optional["sha256"], session, timeout=20)
    except FetchError as exc:
        return {name: str(exc)}
    on_progress(f"fetched optional {optional['filename']}")
    return {}


def optional_present(profile: LockedProfile, wheelhouse: Path) -> dict[str, Path]:
    """Optional wheels that are in the wheelhouse and verified; the build installs these."""
    present = {}
    for name, optional in profile.optional.items():
        target = wheelhouse / optional["filename"]
        if optional.get("sha256") and target.exists() and sha256_of(target) == optional["sha256"]:
            present[name] = target
    return present
