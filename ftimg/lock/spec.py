"""Profile specs: the human-edited inputs under docker/profiles/, one TOML file per profile.

Pure: parsing and validation only; `load_specs` is the one function that reads files.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from ftimg.errors import LockError

SPEC_KEYS = {"description", "python", "platform", "exclude_newer", "requirements",
             "build_requirements", "base", "optional"}
BASE_KEYS = {"image", "suite", "mirror", "packages"}
OPTIONAL_KEYS = {"filename", "url", "sha256"}


@dataclass(frozen=True)
class BaseSpec:
    image: str
    suite: str
    mirror: str
    packages: tuple[str, ...]


@dataclass(frozen=True)
class OptionalArtifact:
    """A wheel that is not on PyPI (flash-attn): recorded so users with internet get it."""

    name: str
    filename: str
    url: str
    sha256: str = ""


@dataclass(frozen=True)
class ProfileSpec:
    name: str
    description: str
    python: str
    platform: str
    requirements: tuple[str, ...]
    build_requirements: tuple[str, ...]
    base: BaseSpec
    exclude_newer: str = ""
    optional: tuple[OptionalArtifact, ...] = field(default_factory=tuple)

    def as_table(self) -> dict:
        """The spec as stored in images.lock, so `ftimg lock --check` can diff the two."""
        table = {
            "python": self.python,
            "platform": self.platform,
            "exclude_newer": self.exclude_newer,
            "requirements": list(self.requirements),
            "build_requirements": list(self.build_requirements),
            "base": {
                "image": self.base.image,
                "suite": self.base.suite,
                "mirror": self.base.mirror,
                "packages": list(self.base.packages),
            },
            "optional": {
                opt.name: {"filename": opt.filename, "url": opt.url, "sha256": opt.sha256}
                for opt in self.optional
            },
        }
        return table


def parse_spec(name: str, text: str, source: str) -> ProfileSpec:
    """Parse one profile spec; every problem is collected and raised once."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LockError(f"{source}: not valid TOML: {exc}. Fix the file and run `ftimg lock` again.") from exc
    problems = []
    unknown = set(data) - SPEC_KEYS
    if unknown:
        problems.append(f"unknown keys {sorted(unknown)} (allowed: {sorted(SPEC_KEYS)})")
    for key in ("python", "platform", "requirements", "base"):
        if key not in data:
            problems.append(f"missing key '{key}'")
    base = data.get("base", {})
    unknown_base = set(base) - BASE_KEYS
    if unknown_base:
        problems.append(f"[base]: unknown keys {sorted(unknown_base)} (allowed: {sorted(BASE_KEYS)})")
    if "image" not in base:
        problems.append("[base]: missing key 'image'")
    for req in list(data.get("requirements", [])) + list(data.get("build_requirements", [])):
        try:
            Requirement(req)
        except InvalidRequirement as exc:
            problems.append(f"requirement {req!r} is not a valid PEP 508 requirement: {exc}")
    optional = []
    for opt_name, opt in data.get("optional", {}).items():
        unknown_opt = set(opt) - OPTIONAL_KEYS
        if unknown_opt:
            problems.append(f"[optional.{opt_name}]: unknown keys {sorted(unknown_opt)}")
        if not {"filename", "url"} <= set(opt):
            problems.append(f"[optional.{opt_name}]: needs 'filename' and 'url'")
            continue
        optional.append(OptionalArtifact(opt_name, opt["filename"], opt["url"], opt.get("sha256", "")))
    if problems:
        listing = "\n  - ".join(problems)
        raise LockError(f"{source} is not a well-formed profile spec:\n  - {listing}")
    return ProfileSpec(
        name=name,
        description=data.get("description", ""),
        python=data["python"],
        platform=data["platform"],
        requirements=tuple(data["requirements"]),
        build_requirements=tuple(data.get("build_requirements", ("pip", "setuptools", "wheel"))),
        base=BaseSpec(
            image=base["image"],
            suite=base.get("suite", "bookworm"),
            mirror=base.get("mirror", "http://deb.debian.org/debian"),
            packages=tuple(base.get("packages", ("python3",))),
        ),
        exclude_newer=data.get("exclude_newer", ""),
        optional=tuple(optional),
    )


def load_specs(profiles_dir: Path) -> dict[str, ProfileSpec]:
    """Every `<profile>.toml` under `profiles_dir`, keyed by profile name."""
    if not profiles_dir.is_dir():
        raise LockError(f"{profiles_dir}: no such directory; profile specs live in docker/profiles/<name>.toml")
    specs = {}
    for path in sorted(profiles_dir.glob("*.toml")):
        specs[path.stem] = parse_spec(path.stem, path.read_text(), str(path))
    if not specs:
        raise LockError(f"{profiles_dir}: no profile specs (*.toml) found")
    return specs
