"""Where the shipped defaults live: the tiny model, sample data, DeepSpeed/accelerate configs."""

import os
from pathlib import Path

ENTRYPOINTS_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = ENTRYPOINTS_DIR / "data"
DEEPSPEED_DIR = ENTRYPOINTS_DIR / "configs" / "deepspeed"
DEFAULT_MODEL_ENV = "FTIMG_DEFAULT_MODEL"
DEFAULT_MODEL_DIR = "/opt/ftimg/models/tiny-llama"


def default_model_path() -> str:
    """The embedded tiny model, generated at image build time (``python -m ftimg_jobs.model.tiny_model DIR``)."""
    return os.environ.get(DEFAULT_MODEL_ENV) or DEFAULT_MODEL_DIR


def sample_data(name: str) -> str:
    return str(DATA_DIR / name)
