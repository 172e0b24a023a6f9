"""`ftimg build`: the stack image (content-addressed by the lock hash) and the train image on top.

The stack holds every locked distribution and is rebuilt only when the lock
changes; the train image adds the entrypoints, so a code change rebuilds in seconds.
A stack build brings its own inputs first (the base image and the verified
wheelhouse), so a build never depends on what an earlier command left behind.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ftimg import engine
from ftimg.doctor import disk_check
from ftimg.errors import FetchError
from ftimg.image.base import ensure_base
from ftimg.image.context import recipe_digest, write_stack_context
from ftimg.image.dockerfile import render
from ftimg.image.fetch import fetch_profile, optional_present, sha256_of
from ftimg.image.labels import image_labels, stack_buildargs, stack_tag, train_buildargs, train_tags
from ftimg.image.tarstream import tar_stream
from ftimg.lock.lockfile import LockedProfile
from ftimg.paths import ProjectPaths

BUILDER_LABEL = "org.ftimg.builder-of"  # set in docker/stack.Dockerfile's builder stage
CATALOGUE = Path("entrypoints/ftimg_jobs/catalogue.json")
FLAG_TABLE = Path("entrypoints/ftimg_jobs/flags.json")
Progress = Callable[[str], None]


@dataclass
class BuildResult:
    profile: str
    stack_image: str
    stack_built: bool
    tags: list[str] = field(default_factory=list)
    image_id: str = ""
    optional: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def source_revision(root: Path) -> str:
    """The git commit the image is built from, with `-dirty` when the tree has changes."""
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "entrypoints",
                                "docker", "images.lock"], capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def check_wheelhouse(profile: LockedProfile, wheelhouse: Path) -> None:
    """Every locked file present and matching its sha256, or a FetchError naming the first bad one."""
    for artifact in profile.artifacts:
        path = wheelhouse / artifact.filename
        if not path.exists():
            raise FetchError(f"{path}: missing from the wheelhouse; run `ftimg fetch {profile.name}`")
        if sha256_of(path) != artifact.sha256:
            raise FetchError(f"{path}: sha256 does not match images.lock; run `ftimg fetch {profile.name}` "
                             "to replace it")


def optional_status(profile: LockedProfile, present: dict[str, Path]) -> dict[str, str]:
    return {name: ("installed" if name in present else "absent: jobs use PyTorch SDPA")
            for name in profile.optional}


def prepare_stack_inputs(client, paths: ProjectPaths, profile: LockedProfile, fetch: bool,
                         on_progress: Progress) -> None:
    """The base image and a wheelhouse verified against the lock, which a stack build reads."""
    disk = disk_check(engine.engine_info(client))
    if not disk.ok:  # say so before a long build, not when the engine runs out mid-way
        on_progress(f"warning: only {disk.detail}; {disk.fix} before building the stack image")
    ensure_base(client, profile.spec["base"], paths.build_dir, on_progress=on_progress)
    if not fetch:  # --skip-fetch: trust the files that are there, but only after hashing them
        check_wheelhouse(profile, paths.wheelhouse)
        return
    on_progress(f"fetching and verifying {len(profile.artifacts)} locked artifacts into {paths.wheelhouse}")

    def report_downloads(line: str) -> None:
        if line.startswith("fetched"):  # downloads take minutes; re-verifying a present file is not news
            on_progress(line)

    fetched = fetch_profile(profile, paths.wheelhouse, on_progress=report_downloads)
    for name, why in fetched.optional_skipped.items():
        on_progress(f"warning: building without optional {name}: {why}")


def build_stack(client, paths: ProjectPaths, profile: LockedProfile, tag: str, nocache: bool,
                on_progress: Progress) -> str:
    """Build the profile's stack image as `tag` from a fresh context and a verified wheelhouse; returns its id."""
    present = optional_present(profile, paths.wheelhouse)
    labels = image_labels(profile, source_revision(paths.root), optional_status(profile, present))
    context = write_stack_context(profile, paths.wheelhouse, paths.docker,
                                  paths.build_dir / profile.name / "stack", present, labels)
    image_id = engine.build_image(client, tar_stream(context), "stack.Dockerfile", tag,
                                  stack_buildargs(profile), nocache=nocache, on_line=on_progress)
    # The builder stage (wheelhouse copy, sdist build, the venv before it is copied out)
    # is dead weight once the stack is tagged: ~9 GB for cu121. A failed build keeps it
    # so that a retry resumes from the engine's cache.
    if engine.remove_dangling_images(client, f"{BUILDER_LABEL}={profile.lock_hash()}"):
        on_progress("removed the builder stage's intermediate images")
    return image_id


def write_train_dockerfile(paths: ProjectPaths, profile: LockedProfile, labels: dict[str, str]) -> str:
    """Render docker/train.Dockerfile with the labels; returns its path relative to the repo root."""
    target = paths.build_dir / profile.name / "train.Dockerfile"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render((paths.docker / "train.Dockerfile").read_text(), labels))
    return str(target.relative_to(paths.root))


def load_jobs(root: Path) -> list[dict]:
    """The job catalogue the train image advertises in its `org.ftimg.jobs` label."""
    return json.loads((root / CATALOGUE).read_text())["jobs"]


def load_flag_renames(root: Path) -> dict[str, str]:
    """The jobs' flag renames the train image advertises in its `org.ftimg.flags` label."""
    return json.loads((root / FLAG_TABLE).read_text())["renamed"]


def current_stack(paths: ProjectPaths, profile: LockedProfile) -> str:
    """The stack image tag the lock and the recipe in docker/ call for."""
    return stack_tag(profile, recipe_digest(paths.docker))


def needs_stack_build(client, paths: ProjectPaths, profile: LockedProfile, nocache: bool) -> bool:
    """Whether the build must (re)build the stack image, and so needs the base and the wheelhouse."""
    return nocache or not engine.image_exists(client, current_stack(paths, profile))


def build_profile(client, paths: ProjectPaths, profile: LockedProfile, nocache: bool = False,
                  fetch: bool = True, on_progress: Progress = lambda _: None) -> BuildResult:
    """Build (or reuse) the stack image, then the train image; tag it by profile and lock hash.

    When the stack must be built, the base image is made and the wheelhouse fetched
    first (`fetch=False` only hash-checks the wheelhouse as it is).
    """
    started = time.monotonic()
    stack_ref = current_stack(paths, profile)
    stack_built = needs_stack_build(client, paths, profile, nocache)
    if stack_built:
        prepare_stack_inputs(client, paths, profile, fetch, on_progress)
        on_progress(f"building stack image {stack_ref}")
        build_stack(client, paths, profile, stack_ref, nocache, on_progress)
    else:
        on_progress(f"stack image {stack_ref} is up to date with images.lock (no base or wheelhouse needed)")
    stack_labels = engine.inspect_image(client, stack_ref)["Config"]["Labels"] or {}
    optional = json.loads(stack_labels.get("org.ftimg.optional", "{}"))
    tags = train_tags(profile)
    on_progress(f"building {tags[0]}")
    labels = image_labels(profile, source_revision(paths.root), optional, load_jobs(paths.root),
                          load_flag_renames(paths.root))
    dockerfile = write_train_dockerfile(paths, profile, labels)
    image_id = engine.build_image(client, paths.root, dockerfile, tags[0], train_buildargs(stack_ref),
                                  nocache=nocache, on_line=on_progress)
    for tag in tags[1:]:
        engine.tag_image(client, image_id, tag)
    return BuildResult(profile.name, stack_ref, stack_built, tags, image_id, optional,
                       time.monotonic() - started)
