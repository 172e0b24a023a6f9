"""`ftimg lock`: resolve profile specs into images.lock, and `--check` that they agree.

Resolution uses uv's resolver for the image's Python version and platform; the
file of each pinned release is then chosen by the image's wheel tags, and its
sha256 comes from the package index.
"""

from __future__ import annotations

import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import requests
from packaging.requirements import Requirement

from ftimg.errors import LockError
from ftimg.lock.index import project_files
from ftimg.lock.lockfile import Artifact, Lock, LockedProfile, canonical_name
from ftimg.lock.platform_tags import choose_file, target_tags
from ftimg.lock.spec import ProfileSpec

DEFAULT_INDEX = "https://pypi.org/simple"
Progress = Callable[[str], None]


def _uv_binary() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def resolve_pins(spec: ProfileSpec, index_url: str) -> dict[str, str]:
    """name -> version for the whole transitive closure, resolved for the image."""
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / f"{spec.name}.in"
        requirements.write_text("\n".join(spec.requirements + spec.build_requirements) + "\n")
        # The pins go to stdout (uv's --quiet would silence them too); progress goes to stderr.
        cmd = [_uv_binary(), "pip", "compile", str(requirements), "--no-header", "--no-annotate",
               "--python-version", spec.python, "--python-platform", spec.platform,
               "--index-url", index_url]
        if spec.exclude_newer:
            cmd += ["--exclude-newer", spec.exclude_newer]
        result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise LockError(f"docker/profiles/{spec.name}.toml: the requirements cannot be resolved "
                        f"for Python {spec.python} on {spec.platform}:\n{result.stderr.strip()}")
    pins = {}
    for line in result.stdout.splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonical_name(name)] = version.split(";")[0].strip()
    return pins


def resolve_profile(spec: ProfileSpec, index_url: str = DEFAULT_INDEX,
                    on_progress: Progress = lambda _: None) -> LockedProfile:
    """Resolve one spec into pinned artifacts (one file per distribution, with sha256)."""
    pins = resolve_pins(spec, index_url)
    on_progress(f"{spec.name}: resolved {len(pins)} distributions; choosing files")
    tags = target_tags(spec.python, spec.platform)
    build_names = {canonical_name(Requirement(r).name) for r in spec.build_requirements}
    session = requests.Session()

    def pick(item: tuple[str, str]) -> Artifact:
        name, version = item
        files = project_files(index_url, name, session)
        filename = choose_file(list(files), version, tags)
        if filename is None:
            raise LockError(f"{name}=={version} has no wheel for Python {spec.python} on "
                            f"{spec.platform} and no sdist; pin another version in "
                            f"docker/profiles/{spec.name}.toml")
        return Artifact(name=name, version=version,
                        kind="wheel" if filename.endswith(".whl") else "sdist",
                        role="build" if name in build_names else "runtime",
                        filename=filename, url=files[filename]["url"],
                        sha256=files[filename]["sha256"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        artifacts = tuple(pool.map(pick, sorted(pins.items())))
    return LockedProfile(spec.name, spec.as_table(), artifacts)


def lock_profiles(specs: dict[str, ProfileSpec], default_profile: str, index_url: str = DEFAULT_INDEX,
                  on_progress: Progress = lambda _: None) -> Lock:
    """Resolve every spec; the result is written by the caller with lockfile.dumps."""
    if default_profile not in specs:
        raise LockError(f"default profile '{default_profile}' has no spec; known: {', '.join(specs)}")
    profiles = {}
    for name, spec in specs.items():
        on_progress(f"{name}: resolving for Python {spec.python} on {spec.platform}")
        profiles[name] = resolve_profile(spec, index_url, on_progress)
    return Lock(default_profile, profiles)


def _diff_tables(prefix: str, spec_side, lock_side) -> list[str]:
    if isinstance(spec_side, dict) and isinstance(lock_side, dict):
        out = []
        for key in sorted(set(spec_side) | set(lock_side)):
            out += _diff_tables(f"{prefix}.{key}", spec_side.get(key), lock_side.get(key))
        return out
    if isinstance(spec_side, list) and isinstance(lock_side, list):
        added = [item for item in spec_side if item not in lock_side]
        removed = [item for item in lock_side if item not in spec_side]
        out = [f"{prefix}: {item!r} is in the spec but not in images.lock" for item in added]
        return out + [f"{prefix}: {item!r} is in images.lock but not in the spec" for item in removed]
    if spec_side != lock_side:
        return [f"{prefix}: spec says {spec_side!r}, images.lock says {lock_side!r}"]
    return []


def check_lock(specs: dict[str, ProfileSpec], lock: Lock) -> list[str]:
    """Every difference between the specs and the lock, as readable lines (empty: in sync)."""
    differences = []
    for name in sorted(set(specs) - set(lock.profiles)):
        differences.append(f"profile '{name}' has a spec (docker/profiles/{name}.toml) but is not in images.lock")
    for name in sorted(set(lock.profiles) - set(specs)):
        differences.append(f"profile '{name}' is in images.lock but has no spec in docker/profiles/")
    for name in sorted(set(specs) & set(lock.profiles)):
        differences += _diff_tables(name, specs[name].as_table(), lock.profiles[name].spec)
    return differences
