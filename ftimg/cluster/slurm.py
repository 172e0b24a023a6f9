"""Talking to Slurm from a login node: partitions (sinfo), submission (sbatch), what srun and the nodes offer.

Parsing is pure and unit-tested. `run_slurm` is the one place that starts a Slurm command, always
with a time limit: a controller that does not answer must not hang ftimg.
"""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ftimg.errors import FtimgError

SLURM_TIMEOUT_S = 60
# One short step on one node: what it has to run images with. --immediate and the time limit bound it.
NODE_PROBE = ('echo "node=$(hostname)"; '
              "echo \"docker=$(timeout 20 docker version --format '{{.Server.Version}}' 2>/dev/null)\"; "
              'echo "apptainer=$( (apptainer --version || singularity --version) 2>/dev/null | head -n 1)"; '
              'echo "enroot=$(enroot version 2>/dev/null)"')
NODE_PROBE_START_S = 30
GPU_GRES = re.compile(r"gpu(?::[A-Za-z0-9_.-]+)?:(\d+)")


@dataclass(frozen=True)
class Partition:
    name: str
    default: bool
    nodes: int
    usable: int
    gpus_per_node: int


def run_slurm(argv: list[str], stdin: str | None = None, timeout: float = SLURM_TIMEOUT_S) -> str:
    """Run a Slurm command; its stdout, or an error with its stderr."""
    if shutil.which(argv[0]) is None:
        raise FtimgError(f"{argv[0]} is not on PATH: this is not a Slurm login node. Write the script with "
                         "-o FILE and submit it where Slurm is (`sbatch FILE`)")
    try:
        result = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FtimgError(f"`{' '.join(argv)}` did not answer within {timeout:.0f} s: is slurmctld up "
                         "(`scontrol ping`)?") from None
    if result.returncode != 0:
        raise FtimgError(f"`{' '.join(argv)}` failed (exit code {result.returncode}): "
                         f"{result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def parse_partitions(summary: str, gres: str) -> dict[str, Partition]:
    """Partitions from `sinfo -h -s -o '%P %F'` (NAME[*] ALLOC/IDLE/OTHER/TOTAL; * marks the default)
    and `sinfo -h -o '%R %G'` (NAME GRES per group of nodes, e.g. gpu:a100:8(S:0-1))."""
    gpus: dict[str, int] = {}
    for line in gres.splitlines():
        name, _, text = line.strip().partition(" ")
        if name:
            count = sum(int(n) for n in GPU_GRES.findall(text))
            gpus[name] = max(gpus.get(name, 0), count)
    partitions = {}
    for line in summary.splitlines():
        fields = line.split()
        if len(fields) != 2 or fields[1].count("/") != 3:
            continue
        name, counts = fields[0], [int(n) for n in fields[1].split("/")]
        plain = name.rstrip("*")
        partitions[plain] = Partition(plain, name.endswith("*"), counts[3], counts[0] + counts[1],
                                      gpus.get(plain, 0))
    return partitions


def check_capacity(partitions: dict[str, Partition], name: str | None, nodes: int,
                   gpus_per_node: int) -> tuple[Partition, list[str]]:
    """The partition the job goes to, or an error when it can never run there; notes on what may delay it."""
    if not partitions:
        raise FtimgError("sinfo lists no partitions: is this cluster's slurmctld configured?")
    listing = ", ".join(f"{p.name} ({p.nodes} nodes)" for p in partitions.values())
    if name is None:
        chosen = next((p for p in partitions.values() if p.default), None)
        if chosen is None:
            raise FtimgError(f"this cluster has no default partition; give --partition (partitions: {listing})")
    elif name not in partitions:
        raise FtimgError(f"--partition {name}: no such partition (partitions: {listing})")
    else:
        chosen = partitions[name]
    if nodes > chosen.nodes:
        raise FtimgError(f"--nodes {nodes}: partition {chosen.name} has {chosen.nodes} node(s), so the job could "
                         f"never start; ask for at most {chosen.nodes} or pick another partition ({listing})")
    if gpus_per_node > chosen.gpus_per_node:
        have = f"at most {chosen.gpus_per_node} GPU(s)" if chosen.gpus_per_node else "no GPUs (no gpu GRES)"
        raise FtimgError(f"--gpus-per-node {gpus_per_node}: the nodes of partition {chosen.name} have {have}")
    notes = []
    if nodes > chosen.usable:
        notes.append(f"partition {chosen.name} has {chosen.usable} of its {chosen.nodes} node(s) up; the job waits "
                     "until enough are back")
    return chosen, notes


def partitions() -> dict[str, Partition]:
    return parse_partitions(run_slurm(["sinfo", "-h", "-s", "-o", "%P %F"]),
                            run_slurm(["sinfo", "-h", "-o", "%R %G"]))


def parse_job_id(output: str) -> str:
    """`sbatch --parsable` prints JOBID or JOBID;CLUSTER."""
    job_id = output.strip().split(";")[0]
    if not job_id.isdigit():
        raise FtimgError(f"sbatch answered {output.strip()!r}, not a job id")
    return job_id


def submit(script: str) -> str:
    """Submit the script's text; the job id."""
    return parse_job_id(run_slurm(["sbatch", "--parsable"], stdin=script))


def config_value(config: str, key: str) -> str | None:
    """A value from `scontrol show config` (`Key = value` lines)."""
    for line in config.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            return None if value.strip() in ("", "(null)") else value.strip()
    return None


def plugstack_entries(text: str) -> tuple[list[str], list[str]]:
    """(plugin lines, include patterns) of a plugstack.conf."""
    plugins, includes = [], []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("include"):
            includes += line.split()[1:]
        elif line:
            plugins.append(line)
    return plugins, includes


def pyxis_in_plugstack(path: str, depth: int = 0) -> list[str]:
    """The plugstack.conf lines (includes followed) that load pyxis."""
    try:
        text = Path(path).read_text()
    except OSError:
        return []
    plugins, includes = plugstack_entries(text)
    found = [f"{path}: {line}" for line in plugins if "pyxis" in line]
    if depth < 3:
        for pattern in includes:
            for included in sorted(glob.glob(pattern)):
                found += pyxis_in_plugstack(included, depth + 1)
    return found


def parse_probe(output: str) -> dict[str, str]:
    """`key=value` lines of NODE_PROBE's output."""
    values = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("node", "docker", "apptainer", "enroot"):
            values[key] = value.strip()
    return values


def probe_node() -> dict[str, str]:
    """Run NODE_PROBE on one compute node (one short step, bounded)."""
    argv = ["srun", "--nodes=1", "--ntasks=1", f"--immediate={NODE_PROBE_START_S}", "--time=2", "bash", "-c",
            NODE_PROBE]
    return parse_probe(run_slurm(argv, timeout=NODE_PROBE_START_S + 90))
