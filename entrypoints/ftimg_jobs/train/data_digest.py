"""The training data's sha256 for the fingerprint: the --dataset_spec file and every data file it (or
--data_path) resolves to, folders (a save_to_disk folder, a folder of files) walked in sorted order; torch-free.

A lone --data_path file hashes to its own sha256, the value fingerprints held before specs and folders
were covered, so checkpoints written then still resume.
"""

import hashlib
from pathlib import Path

from ftimg_jobs.data.loading import data_sources
from ftimg_jobs.run_manifest import file_sha256

CHUNK = 1 << 20


def add_file(digest, path: Path) -> None:
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)


def add_path(digest, label: str, path: Path) -> None:
    """A file's bytes, or each file of a folder under its relative name (a rename changes the data too)."""
    if path.is_dir():
        for child in sorted(item for item in path.rglob("*") if item.is_file()):
            digest.update(f"\0{label}/{child.relative_to(path).as_posix()}\0".encode())
            add_file(digest, child)
    elif path.is_file():
        digest.update(f"\0{label}\0".encode())
        add_file(digest, path)
    else:  # not a local path (checked earlier where it must be one): its name is all there is
        digest.update(f"\0{label} (name)\0{path}".encode())


def training_data_sha256(data_args) -> str:
    spec = getattr(data_args, "dataset_spec", None)
    sources, _eval_source = data_sources(data_args, data_args.data_path)
    paths = [Path(path) for source in sources for path in source.paths]
    if not spec and len(paths) == 1 and paths[0].is_file():
        return file_sha256(paths[0])
    digest = hashlib.sha256()
    if spec:
        add_path(digest, "dataset_spec", Path(spec))
    for index, path in enumerate(paths):
        add_path(digest, f"data[{index}]", path)
    return digest.hexdigest()
