"""Where the project's files are: images.lock, docker/, entrypoints/ and the wheelhouse."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProjectPaths:
    root: Path

    @property
    def lock(self) -> Path:
        return self.root / "images.lock"

    @property
    def profiles(self) -> Path:
        return self.root / "docker" / "profiles"

    @property
    def docker(self) -> Path:
        return self.root / "docker"

    @property
    def wheelhouse(self) -> Path:
        return Path(os.environ.get("FTIMG_WHEELHOUSE", self.root / "wheelhouse"))

    @property
    def build_dir(self) -> Path:
        return self.root / "build"


def find_project(start: Path | None = None) -> ProjectPaths:
    """The nearest directory at or above `start` (default: cwd, or $FTIMG_PROJECT) with docker/profiles."""
    if os.environ.get("FTIMG_PROJECT"):
        return ProjectPaths(Path(os.environ["FTIMG_PROJECT"]).resolve())
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "docker" / "profiles").is_dir():
            return ProjectPaths(candidate)
    return ProjectPaths(here)
