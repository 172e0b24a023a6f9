"""Assemble the stack image's build context: the profile's verified wheels and nothing else.

Wheels are hard-linked from the wheelhouse (no copy of several GiB); the context
also carries stack.json (the artifacts the builder installs), the installer and
the sdist patches.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

from ftimg.image.dockerfile import render
from ftimg.lock.lockfile import LockedProfile


def recipe_digest(docker_dir: Path) -> str:
    """sha256 over the files that shape the stack image besides the lock."""
    digest = hashlib.sha256()
    files = [docker_dir / "stack.Dockerfile", docker_dir / "install_stack.py",
             *sorted(p for p in (docker_dir / "patches").rglob("*") if p.is_file())]
    for path in files:
        digest.update(str(path.relative_to(docker_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def write_stack_context(profile: LockedProfile, wheelhouse: Path, docker_dir: Path, target: Path,
                        optional_wheels: dict[str, Path], labels: dict[str, str]) -> Path:
    """(Re)create `target` as the stack build context; returns it."""
    if target.exists():
        shutil.rmtree(target)
    (target / "wheelhouse").mkdir(parents=True)
    for artifact in profile.artifacts:
        _link_or_copy(wheelhouse / artifact.filename, target / "wheelhouse" / artifact.filename)
    optional = {}
    for name, path in optional_wheels.items():
        _link_or_copy(path, target / "wheelhouse" / path.name)
        optional[path.name] = profile.optional[name]["sha256"]
    (target / "stack.Dockerfile").write_text(render((docker_dir / "stack.Dockerfile").read_text(), labels))
    shutil.copy2(docker_dir / "install_stack.py", target / "install_stack.py")
    shutil.copytree(docker_dir / "patches", target / "patches")
    stack = {"profile": profile.name, "artifacts": [asdict(a) for a in profile.artifacts],
             "optional": optional}
    (target / "stack.json").write_text(json.dumps(stack, indent=1, sort_keys=True))
    return target
