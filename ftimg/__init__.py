"""ftimg: reproducible, pinned Docker images for LLM fine-tuning."""

__version__ = "0.1.0"
