"""Load the job catalogue (catalogue.json): the jobs this image can run.

The host tool reads the same file (through an image label) to validate job
names and to know which flags carry host paths that must be mounted. Pure:
no torch, no I/O beyond ``load_catalogue``.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from ftimg_jobs.errors import JobError

CATALOGUE_PATH = Path(__file__).with_name("catalogue.json")
REQUIRED_KEYS = ("name", "description", "module", "distributed", "path_flags", "defaults")


@dataclass(frozen=True)
class JobSpec:
    """One job: its name, what it does, the module whose ``main(job, argv)`` runs it,
    whether it is launched one process per GPU, which flags hold paths, and the
    flag defaults that distinguish it from its siblings (e.g. ``q_lora``)."""

    name: str
    description: str
    module: str
    distributed: bool
    path_flags: tuple
    defaults: dict


def parse_catalogue(document: dict, source: str = "catalogue") -> dict:
    """Turn the catalogue JSON document into ``{name: JobSpec}``; raise JobError on a malformed entry."""
    jobs = {}
    for index, entry in enumerate(document.get("jobs", []), start=1):
        missing = [key for key in REQUIRED_KEYS if key not in entry]
        if missing:
            raise JobError(f"{source}: job entry {index} is missing {', '.join(missing)}")
        if entry["name"] in jobs:
            raise JobError(f"{source}: job '{entry['name']}' is listed twice")
        jobs[entry["name"]] = JobSpec(
            name=entry["name"],
            description=entry["description"],
            module=entry["module"],
            distributed=bool(entry["distributed"]),
            path_flags=tuple(entry["path_flags"]),
            defaults=dict(entry["defaults"]),
        )
    if not jobs:
        raise JobError(f"{source}: lists no jobs")
    return jobs


def load_catalogue(path: Path = CATALOGUE_PATH) -> dict:
    """Read and parse the catalogue file."""
    return parse_catalogue(json.loads(Path(path).read_text(encoding="utf-8")), source=str(path))


def find_job(jobs: dict, name: str) -> JobSpec:
    """Return the named job or raise JobError listing the known jobs."""
    if name in jobs:
        return jobs[name]
    raise JobError(f"unknown job '{name}'. Known jobs: {', '.join(sorted(jobs))}")


def describe_jobs(jobs: dict) -> str:
    """One line per job, for ``python -m ftimg_jobs --help``."""
    width = max(len(name) for name in jobs)
    return "\n".join(f"  {spec.name:<{width}}  {spec.description}" for spec in jobs.values())
