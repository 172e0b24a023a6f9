"""Hand secrets to a job container as read-only files at /run/secrets/NAME, never in its configuration.

Why bind-mounted files, and how long they exist on the host: Docker Engine 20.10 cannot
write into a tmpfs mount of a container that has not started (`put_archive` then writes
below the mount point, into the container's own layer, where `docker export`, `docker diff`
and `docker commit` would find the value later). So each value is written to a file of
mode 0444 in a fresh directory of mode 0700 on a RAM filesystem (the first tmpfs of
$XDG_RUNTIME_DIR, /dev/shm, /run/user/UID), that file is bind-mounted read-only at
/run/secrets/NAME, and the directory is
deleted as soon as the container has started. The running container keeps the file (a bind
mount holds it after it is unlinked); the host keeps nothing. While it exists, only the
caller's user and root can reach it (the directory is 0700); `docker inspect` shows the
mount's path and name, never the value. A kept container cannot be started again with
`docker start` (its secret files are gone): run the job again with ftimg.

A host with none of those on a RAM filesystem (a container without /dev/shm, macOS) gets the
files in the system's temporary directory, on disk, for the seconds the container takes to
start, and one warning naming that directory: refusing would leave such a user no way to
hand a job a secret but `-e`, which is worse (the value stays in `docker inspect`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

from ftimg.errors import FtimgError
from ftimg.job.runspec import Mount
from ftimg.job.secrets import SecretInput, secrets_dir

RAM_FILESYSTEMS = ("tmpfs", "ramfs")
MOUNT_TABLE = "/proc/self/mounts"


def secret_value(secret: SecretInput, host_env: Mapping[str, str]) -> str:
    """The value of one secret: the flag's, the caller's $NAME, or the file's (trailing newline dropped)."""
    if secret.origin == "flag":
        value = secret.value or ""
    elif secret.origin == "env":
        if secret.source not in host_env:
            raise FtimgError(f"--secret {secret.name}: {secret.source} is not set in this environment; "
                             f"export it, or give --secret {secret.name}=FILE to read it from a file")
        value = host_env[secret.source]
    else:
        try:
            value = Path(secret.source).read_text(encoding="utf-8")
        except OSError as exc:
            raise FtimgError(f"--secret {secret.name}={secret.source}: cannot read it "
                             f"({exc.strerror}); give a file you may read") from None
        except UnicodeDecodeError:
            raise FtimgError(f"--secret {secret.name}={secret.source}: not a text file (UTF-8); "
                             "a secret file holds the value as text") from None
        # `echo $TOKEN > file` adds a newline that no token contains.
        value = value.rstrip("\r\n")
    if not value:
        raise FtimgError(f"{secret.source if secret.origin != 'env' else '--secret ' + secret.name}: "
                         "the value is empty; give the secret itself")
    return value


def ram_mount_points(mount_table: str) -> set[str]:
    """Mount points of RAM filesystems in a /proc/self/mounts text (octal escapes such as \\040 decoded)."""
    points = set()
    for line in mount_table.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] in RAM_FILESYSTEMS:
            points.add(fields[1].encode().decode("unicode_escape"))
    return points


def is_ram_backed(path: str, mount_table: str) -> bool:
    """Whether `path` lies on a RAM filesystem: the mount holding it (the longest mount point above it) is one."""
    real = os.path.realpath(path)
    holders = [line.split()[1].encode().decode("unicode_escape") for line in mount_table.splitlines()
               if len(line.split()) >= 3]
    above = [point for point in holders if real == point or real.startswith(point.rstrip("/") + "/")]
    return bool(above) and max(above, key=len) in ram_mount_points(mount_table)


def ram_directory(host_env: Mapping[str, str], mount_table: str | None = None) -> str | None:
    """The first of $XDG_RUNTIME_DIR, /dev/shm, /run/user/UID that is a RAM filesystem this user may write to."""
    if mount_table is None:
        try:
            mount_table = Path(MOUNT_TABLE).read_text()
        except OSError:
            return None
    for candidate in (host_env.get("XDG_RUNTIME_DIR"), "/dev/shm", f"/run/user/{os.getuid()}"):
        if (candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK)
                and is_ram_backed(candidate, mount_table)):
            return candidate
    return None


@contextmanager
def secret_mounts(secrets: Iterable[SecretInput], host_env: Mapping[str, str],
                  on_warning: Callable[[str], None] = lambda _: None,
                  mount_table: str | None = None) -> Iterator[list[Mount]]:
    """Read-only bind mounts of one file per secret; the files are deleted when the block ends.

    Every value is read (and every problem raised) before anything is written. Without a RAM
    filesystem the files go to the temporary directory on disk, and `on_warning` says where.
    """
    values = {secret.name: secret_value(secret, host_env) for secret in secrets}
    if not values:
        yield []
        return
    ram = ram_directory(host_env, mount_table)
    directory = tempfile.mkdtemp(prefix="ftimg-secrets-", dir=ram)
    if ram is None:
        on_warning(f"no RAM filesystem for secret files ($XDG_RUNTIME_DIR, /dev/shm and /run/user/{os.getuid()} "
                   f"are missing or not tmpfs): they are on disk in {directory} until the container starts; "
                   "set XDG_RUNTIME_DIR to a tmpfs directory you own to keep them in memory")
    try:
        mounts = []
        for name, value in values.items():
            path = os.path.join(directory, name)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(value)
            mounts.append(Mount(path, f"{secrets_dir()}/{name}", read_only=True))
        yield mounts
    finally:
        shutil.rmtree(directory, ignore_errors=True)
