"""Render a Dockerfile template with the image's labels as ONE instruction. Pure.

The engine's `labels` build parameter turns each label into its own LABEL step,
and on a slow storage driver every step is a container commit (seconds each);
one LABEL line keeps a code-only rebuild to the steps that changed.
"""

from __future__ import annotations

import json


def label_instruction(labels: dict[str, str]) -> str:
    """`LABEL "k"="v" ...` with keys sorted and values JSON-quoted (Dockerfile escapes)."""
    pairs = " \\\n      ".join(f"{json.dumps(key)}={json.dumps(value)}" for key, value in sorted(labels.items()))
    return f"LABEL {pairs}\n"


def render(template: str, labels: dict[str, str]) -> str:
    """The template followed by the label instruction."""
    return template.rstrip("\n") + "\n" + label_instruction(labels)
