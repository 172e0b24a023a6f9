"""Where the project's files are, for tests at any depth (tests/ is on sys.path through its conftest)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINTS = ROOT / "entrypoints"
JOBS_PACKAGE = ENTRYPOINTS / "ftimg_jobs"
SAMPLE_DATA = ENTRYPOINTS / "data"
