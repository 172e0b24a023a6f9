"""`ftimg base`: make the profile's base image exist, built from Debian packages when absent.

No container registry is needed: debootstrap installs the packages from Debian's
archive (apt verifies their signatures) into a directory that `docker import` turns
into an image. A user with a registry may set [base] image in the profile spec to
any reference that has python3.11; ftimg then only checks that it is present.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from ftimg import engine
from ftimg.errors import EngineError

BUILT_BY_FTIMG = "ftimg/base:"
# Files that differ on every debootstrap run and mean nothing to the image.
VOLATILE = ["var/log", "var/cache/apt", "var/lib/apt/lists", "var/cache/debconf/*-old",
            "var/lib/dpkg/*-old", "etc/machine-id", "etc/hostname", "root/.bash_history"]
IMAGE_CHANGES = ['ENV LANG=C.UTF-8', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
                 'CMD ["/bin/bash"]']
Progress = Callable[[str], None]


def remove_volatile(rootfs: Path) -> None:
    """Empty log/cache directories and drop per-run files, keeping the directories themselves."""
    for pattern in VOLATILE:
        for path in rootfs.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                for child in path.iterdir():
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            else:
                path.unlink()


def debootstrap_command(suite: str, mirror: str, packages: list[str], target: Path) -> list[str]:
    """The debootstrap invocation for a minimal root filesystem with `packages`."""
    return ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, str(target), mirror]


def ensure_base(client, base: dict, work_dir: Path, on_progress: Progress = lambda _: None,
                rebuild: bool = False) -> str:
    """Return the base image reference, building it first when it is ours and missing."""
    ref = base["image"]
    if engine.image_exists(client, ref) and not rebuild:
        on_progress(f"base image {ref} is present")
        return ref
    if not ref.startswith(BUILT_BY_FTIMG):
        raise EngineError(f"base image {ref} is not in the engine. ftimg builds only {BUILT_BY_FTIMG}* "
                          f"images itself: `docker pull {ref}` from your registry first, or set "
                          "[base] image back to ftimg/base:<name> in the profile spec.")
    if shutil.which("debootstrap") is None:
        raise EngineError(f"building {ref} needs debootstrap: install it (`apt-get install debootstrap`) "
                          "or run `make image`, which installs it")
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        cmd = debootstrap_command(base["suite"], base["mirror"], list(base["packages"]), rootfs)
        on_progress("$ " + " ".join(cmd))
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tail = []
        for line in process.stdout:
            tail = (tail + [line.rstrip()])[-40:]
            on_progress(line.rstrip())
        if process.wait() != 0:
            raise EngineError(f"debootstrap of {base['suite']} from {base['mirror']} failed "
                              f"(exit {process.returncode}); nothing was imported", "\n".join(tail))
        remove_volatile(rootfs)
        tarball = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(tarball), "."],
                       check=True)
        on_progress(f"importing {tarball.stat().st_size >> 20} MiB root filesystem as {ref}")
        engine.import_rootfs(client, tarball, ref, IMAGE_CHANGES)
    return ref
