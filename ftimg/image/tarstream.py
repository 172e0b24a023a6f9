"""A build context streamed to the engine as it is tarred, never written to disk.

docker-py tars a context directory into a temporary file before sending it: for
the stack image that is a second copy of the wheelhouse (~3 GB) in /tmp. Here a
thread writes the tar into a pipe and the upload reads the other end.
"""

from __future__ import annotations

import os
import tarfile
import threading
from pathlib import Path
from typing import Iterator

CHUNK = 1 << 20


def _files(root: Path) -> list[Path]:
    """Every entry under root, parents before children, in a stable order."""
    return sorted(root.rglob("*"), key=lambda p: p.relative_to(root).parts)


def tar_stream(root: Path) -> Iterator[bytes]:
    """The tar of everything under `root` (paths relative to it), in chunks.

    An error while tarring (a file vanished, unreadable) is raised here, in the
    consumer, after the bytes written so far.
    """
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb") as sink, tarfile.open(fileobj=sink, mode="w|") as tar:
                for path in _files(root):
                    tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
        except BaseException as exc:  # handed to the consumer below
            failure.append(exc)

    producer = threading.Thread(target=produce, name="tar-context", daemon=True)
    producer.start()
    with os.fdopen(read_fd, "rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk
    producer.join()
    if failure:
        raise OSError(f"tarring the build context {root} failed: {failure[0]}") from failure[0]
