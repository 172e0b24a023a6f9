"""The command lines in the seeds (shared/seeds/*.txt, beside the repository): what users bring.

A command line is a shell line (backslash continuations joined, HTML <code> tags
dropped) that runs a Python script or starts with a launcher; its flags are every ``--name`` on it, the
launcher's (torchrun, accelerate launch, deepspeed, srun) before the script and
the script's after it.
"""

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from project_paths import ROOT

SEEDS_DIR = ROOT.parent / "shared" / "seeds"
SCRIPT = re.compile(r"\S+\.py\b")
LAUNCHER = re.compile(r"^(accelerate[- ]launch|torchrun|deepspeed|srun|python)\b")


@dataclass
class CommandLine:
    seed: str
    line: int
    tokens: list

    def flags(self) -> list:
        """``(name, value or None)`` for each ``--name [value]`` on the line (``--a=b`` split)."""
        found = []
        for index, token in enumerate(self.tokens):
            if not token.startswith("--") or len(token) < 3:
                continue
            name, joined, value = token[2:].partition("=")
            if not joined:
                following = self.tokens[index + 1] if index + 1 < len(self.tokens) else "--"
                value = None if following.startswith("--") or SCRIPT.fullmatch(following) else following
            found.append((name.replace("-", "_"), value))
        return found


def joined_lines(text: str):
    """``(first line number, logical line)`` with ``\\`` and ``\\\\`` continuations joined."""
    start, pending = None, ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"</?code>", " ", raw).rstrip()
        start = start or number
        continued = line.endswith("\\")
        pending += " " + line.rstrip("\\")
        if not continued:
            yield start, pending.strip()
            start, pending = None, ""
    if pending:
        yield start, pending.strip()


def command_lines(seeds_dir: Path = SEEDS_DIR) -> list:
    """Every command line of every seed that runs a Python script."""
    found = []
    for path in sorted(seeds_dir.glob("*.txt")):
        for number, line in joined_lines(path.read_text(encoding="utf-8")):
            if (SCRIPT.search(line) or LAUNCHER.match(line)) and "--" in line:
                try:
                    tokens = shlex.split(line, posix=True)
                except ValueError:
                    tokens = line.split()
                found.append(CommandLine(path.name[:3], number, tokens))
    return found
