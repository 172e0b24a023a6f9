"""Writing shell scripts: literal words are quoted, expansions the script means are written as they are."""

from __future__ import annotations

import shlex
from typing import Iterable


class Expansion(str):
    """A shell word kept as written, e.g. `"$SLURM_NODEID"`: the script expands it when it runs."""


def word(token: str) -> str:
    return token if isinstance(token, Expansion) else shlex.quote(token)


def words(tokens: Iterable[str]) -> str:
    return " ".join(word(token) for token in tokens)


def continued(lines: list[str], indent: str = "    ") -> str:
    """One command over several lines: `first \\` / `    second \\` / `    last`."""
    return f" \\\n{indent}".join(lines)
