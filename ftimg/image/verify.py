"""`ftimg verify`: prove an image matches images.lock.

Three checks, each readable on its own: the image's labels name this lock's hash;
the distributions installed in its virtualenv are exactly the pinned ones; and
(optionally) a content digest over the whole filesystem, which is equal for two
builds of the same lock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ftimg import engine
from ftimg.errors import VerifyError
from ftimg.lock.lockfile import Lock, LockedProfile, canonical_name

LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json, sys;"
    "print(json.dumps({'python': '.'.join(map(str, sys.version_info[:3])),"
    " 'dists': {d.metadata['Name']: d.version for d in m.distributions()}}))"
)

# Walks the filesystem in sorted order and hashes path, type+permission bits and
# content (link target for symlinks). Files the engine writes into every container,
# and pseudo filesystems, are left out; timestamps and owners are not content.
CONTENT_DIGEST = r"""
import hashlib, os, stat, sys
SKIP = {"/proc", "/sys", "/dev", "/.dockerenv", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/mtab"}
total = hashlib.sha256(); files = 0
def walk(directory):
    global files
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if path in SKIP:
            continue
        info = os.lstat(path)
        total.update(f"{path}\0{stat.S_IFMT(info.st_mode):o}\0{stat.S_IMODE(info.st_mode):o}\0".encode())
        if stat.S_ISLNK(info.st_mode):
            total.update(os.readlink(path).encode())
        elif stat.S_ISDIR(info.st_mode):
            walk(path)
        elif stat.S_ISREG(info.st_mode):
            files += 1
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            total.update(digest.digest())
        total.update(b"\n")
walk("/")
print(total.hexdigest(), files)
"""


@dataclass
class VerifyReport:
    image: str
    profile: str
    differences: list[str] = field(default_factory=list)
    checked: int = 0
    digest: str = ""
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.differences


def profile_of(client, image: str, lock: Lock) -> tuple[LockedProfile, dict]:
    """The lock profile an image was built from (its org.ftimg.profile label)."""
    labels = engine.inspect_image(client, image)["Config"].get("Labels") or {}
    name = labels.get("org.ftimg.profile")
    if not name:
        raise VerifyError(f"{image} carries no org.ftimg.profile label: it was not built by ftimg")
    return lock.profile(name), labels


def compare_distributions(profile: LockedProfile, installed: dict[str, str]) -> list[str]:
    """Readable differences between the pins and what is installed (pure)."""
    installed = {canonical_name(name): version for name, version in installed.items()}
    optional = {canonical_name(name) for name in profile.optional}
    differences = []
    for artifact in profile.artifacts:
        key = canonical_name(artifact.name)
        if key not in installed:
            differences.append(f"- {artifact.name}=={artifact.version}: pinned but not installed")
        elif installed[key] != artifact.version:
            differences.append(f"~ {artifact.name}: pinned {artifact.version}, installed {installed[key]}")
    pinned = {canonical_name(a.name) for a in profile.artifacts}
    for key in sorted(set(installed) - pinned - optional):
        differences.append(f"+ {key}=={installed[key]}: installed but not in images.lock")
    return differences


def content_digest(client, image: str) -> tuple[str, int]:
    """sha256 over every path, mode and file content of the image (and the file count)."""
    code, out, err = engine.run_capture(client, image, ["-c", CONTENT_DIGEST], entrypoint=["python3"])
    if code != 0:
        raise VerifyError(f"computing the content digest of {image} failed (exit {code})", err[-2000:])
    digest, files = out.split()
    return digest, int(files)


def verify_image(client, image: str, lock: Lock, with_digest: bool = False) -> VerifyReport:
    """Compare `image` with the lock; the report lists every difference."""
    profile, labels = profile_of(client, image, lock)
    report = VerifyReport(image, profile.name)
    if labels.get("org.ftimg.lock-hash") != profile.lock_hash():
        report.differences.append(f"label org.ftimg.lock-hash is {labels.get('org.ftimg.lock-hash')}, "
                                  f"images.lock's profile {profile.name} hashes to {profile.lock_hash()}")
    code, out, err = engine.run_capture(client, image, ["-c", LIST_DISTRIBUTIONS],
                                        entrypoint=["/opt/venv/bin/python"])
    if code != 0:
        raise VerifyError(f"listing the distributions in {image} failed (exit {code})", err[-2000:])
    listing = json.loads(out)
    report.checked = len(listing["dists"])
    if not listing["python"].startswith(profile.spec["python"] + "."):
        report.differences.append(f"~ python: profile wants {profile.spec['python']}, image has {listing['python']}")
    report.differences += compare_distributions(profile, listing["dists"])
    if with_digest:
        report.digest, report.files = content_digest(client, image)
    return report
