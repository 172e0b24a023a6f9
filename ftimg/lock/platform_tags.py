"""Which file of a release to pin for the image's Python and platform (not the host's). Pure."""

from __future__ import annotations

import re

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename

PLATFORM = re.compile(r"^(?P<arch>x86_64|aarch64)-manylinux_2_(?P<glibc>\d+)$")


def target_tags(python: str, platform: str) -> list[Tag]:
    """Tags the image's interpreter accepts, best first (as pip ranks them there)."""
    match = PLATFORM.match(platform)
    if not match:
        raise ValueError(f"platform {platform!r} must look like x86_64-manylinux_2_36")
    arch, glibc = match["arch"], int(match["glibc"])
    platforms = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    for minor, alias in legacy.items():
        if minor <= glibc:
            platforms.insert(platforms.index(f"manylinux_2_{minor}_{arch}") + 1, f"{alias}_{arch}")
    platforms.append(f"linux_{arch}")
    version = tuple(int(part) for part in python.split("."))[:2]
    return list(cpython_tags(version, platforms=platforms)) + list(
        compatible_tags(version, platforms=platforms))


def choose_file(filenames: list[str], version: str, tags: list[Tag]) -> str | None:
    """The best wheel of `version` for `tags`, else its sdist, else None."""
    rank = {tag: index for index, tag in enumerate(tags)}
    best, best_rank, sdist = None, len(rank), None
    for filename in filenames:
        if filename.endswith(".whl"):
            try:
                _, file_version, _, file_tags = parse_wheel_filename(filename)
            except InvalidWheelFilename:
                continue
            if str(file_version) != version:
                continue
            file_rank = min((rank[t] for t in file_tags if t in rank), default=len(rank))
            if file_rank < best_rank:
                best, best_rank = filename, file_rank
        elif filename.endswith((".tar.gz", ".zip")):
            try:
                _, file_version = parse_sdist_filename(filename)
            except InvalidSdistFilename:
                continue
            if str(file_version) == version:
                sdist = filename
    return best or sdist
