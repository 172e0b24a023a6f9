"""Hand secrets to a job container as read-only files at /run/secrets/NAME, never in its configuration.

Why bind-mounted files, and how long they exist on the host: Docker Engine 20.10 cannot
write into a tmpfs mount of a container that has not started (`put_archive` then writes
below the mount point, into the container's own layer, where `docker export`, `docker diff`
and `docker commit` would find the value later). So each value is written to a file of
mode 0444 in a fresh directory of mode 0700 on a RAM filesystem ($XDG_RUNTIME_DIR, else
/dev/shm), that file is bind-mounted read-only at /run/secrets/NAME, and the directory is
deleted as soon as the container has started. The running container keeps the file (a bind
mount holds it after it is unlinked); the host keeps nothing. While it exists, only the
caller's user and root can reach it (the directory is 0700); `docker inspect` shows the
mount's path and name, never the value. A kept container cannot be started again with
`docker start` (its secret files are gone): run the job again with ftimg.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from ftimg.errors import FtimgError
from ftimg.job.runspec import Mount
from ftimg.job.secrets import SecretInput, secrets_dir

RAM_DIRS = ("/dev/shm",)


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


def ram_directory(host_env: Mapping[str, str]) -> str | None:
    """A RAM-backed directory only this user writes to, where one exists (else the system's temp dir)."""
    for candidate in (host_env.get("XDG_RUNTIME_DIR"), *RAM_DIRS):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return None


@contextmanager
def secret_mounts(secrets: Iterable[SecretInput], host_env: Mapping[str, str]) -> Iterator[list[Mount]]:
    """Read-only bind mounts of one file per secret; the files are deleted when the block ends.

    Every value is read (and every problem raised) before anything is written.
    """
    values = {secret.name: secret_value(secret, host_env) for secret in secrets}
    if not values:
        yield []
        return
    directory = tempfile.mkdtemp(prefix="ftimg-secrets-", dir=ram_directory(host_env))
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
