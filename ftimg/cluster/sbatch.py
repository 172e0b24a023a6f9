"""`ftimg sbatch`: a Slurm batch script that runs one job of the train image on N nodes. Pure.

The script asks for N nodes with one task each and starts the image on every node in one srun
step; there the image's own launcher starts one process per GPU. The rendezvous comes from
Slurm and fills the contract `ftimg compose` fills (compose_model.rendezvous_environment):
MASTER_ADDR = the first host of SLURM_JOB_NODELIST, NODE_RANK = SLURM_NODEID, NNODES =
SLURM_NNODES. How the image runs on a node (pyxis, apptainer, the node's Docker engine) is the
runtime's part (sbatch_runtimes); resources, logs, preemption and requeue are written here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ftimg import __version__
from ftimg.cluster.compose import DEFAULT_MASTER_PORT, NCCL_SETTINGS, rendezvous_environment
from ftimg.cluster.runtimes import RUNTIMES, ImageFacts, runtime_step
from ftimg.cluster.shell import continued, words
from ftimg.errors import FtimgError
from ftimg.job.runspec import HF_CACHE_TARGET, RunSpec

# Shell expressions the batch script fills the launcher's contract with.
SLURM_RENDEZVOUS = {"nnodes": "$SLURM_NNODES", "node_rank": "$SLURM_NODEID",
                    "master_addr": '$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)'}
# sbatch options ftimg writes itself, by long and short name, with the ftimg option to use instead.
MANAGED_OPTIONS = {"job-name": "--job-name", "J": "--job-name", "nodes": "--nodes", "N": "--nodes",
                   "ntasks-per-node": "--nodes", "gpus-per-node": "--gpus-per-node", "partition": "--partition",
                   "p": "--partition", "time": "--time", "t": "--time", "account": "--account", "A": "--account",
                   "qos": "--qos", "q": "--qos", "exclusive": "--exclusive", "requeue": "--requeue",
                   "no-requeue": "--no-requeue", "signal": "--signal-grace", "output": "--log-dir",
                   "o": "--log-dir", "open-mode": "--log-dir"}
TIME_FORMATS = (r"(?P<m>\d+)", r"(?P<m>\d+):(?P<s>\d+)", r"(?P<h>\d+):(?P<m>\d+):(?P<s>\d+)",
                r"(?P<d>\d+)-(?P<h>\d+)", r"(?P<d>\d+)-(?P<h>\d+):(?P<m>\d+)",
                r"(?P<d>\d+)-(?P<h>\d+):(?P<m>\d+):(?P<s>\d+)")
PLAIN_VALUE = re.compile(r"[^\s'\"\\]+")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class SbatchOptions:
    """`ftimg sbatch`'s Slurm options as given (`log_dir` absolute); see `ftimg sbatch --help`."""

    job_name: str
    log_dir: str
    nodes: int = 1
    gpus_per_node: int = 0
    runtime: str = "pyxis"
    node_image: str = ""
    partition: str | None = None
    time: str | None = None
    account: str | None = None
    qos: str | None = None
    exclusive: bool = False
    extras: list[str] = field(default_factory=list)
    requeue: bool = True
    signal_grace: int = 300
    step_start_timeout: int = 120
    master_port: int = DEFAULT_MASTER_PORT
    network: str = "host"
    passed_env: list[str] = field(default_factory=list)
    # Secrets the job needs, by name, from the submitting shell (the docker runtime mounts them as files).
    secrets: list[str] = field(default_factory=list)


def time_limit_seconds(value: str) -> int | None:
    """Slurm's --time formats in seconds (minutes, MM:SS, HH:MM:SS, D-HH[:MM[:SS]]); None for UNLIMITED."""
    text = value.strip()
    if text.upper() in ("UNLIMITED", "INFINITE"):
        return None
    for pattern in TIME_FORMATS:
        match = re.fullmatch(pattern, text)
        if match:
            parts = {key: int(number) for key, number in match.groupdict().items() if number is not None}
            return ((parts.get("d", 0) * 24 + parts.get("h", 0)) * 60 + parts.get("m", 0)) * 60 + parts.get("s", 0)
    raise FtimgError(f"--time {value}: expected minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS")


def managed_option(extra: str) -> str | None:
    """The ftimg option to use instead of an --sbatch extra that ftimg writes itself, if it is one."""
    name = re.split(r"[=\s]", extra[2:], maxsplit=1)[0] if extra.startswith("--") else extra[1:2]
    return MANAGED_OPTIONS.get(name)


def check_options(options: SbatchOptions) -> None:
    """Every problem with the options at once, before anything is written or submitted."""
    problems = []
    if options.runtime not in RUNTIMES:
        problems.append(f"--runtime {options.runtime}: unknown runtime; choose one of {', '.join(RUNTIMES)}")
    if options.nodes < 1:
        problems.append(f"--nodes {options.nodes}: need at least one node")
    if options.gpus_per_node < 0:
        problems.append(f"--gpus-per-node {options.gpus_per_node}: give 0 (CPU) or more")
    if not 0 < options.master_port < 65536:
        problems.append(f"--master-port {options.master_port}: not a TCP port")
    if options.signal_grace < 0:
        problems.append(f"--signal-grace {options.signal_grace}: give seconds, 0 or more")
    if options.step_start_timeout < 1:
        problems.append(f"--step-start-timeout {options.step_start_timeout}: give at least 1 second")
    for flag, value in (("--job-name", options.job_name), ("--partition", options.partition),
                        ("--account", options.account), ("--qos", options.qos), ("--time", options.time),
                        ("--log-dir", options.log_dir)):
        if value is not None and not PLAIN_VALUE.fullmatch(value):
            problems.append(f"{flag} {value!r}: no spaces, quotes or backslashes in Slurm option values")
    if options.time is not None:
        try:
            limit = time_limit_seconds(options.time)
            if limit is not None and options.signal_grace and limit <= options.signal_grace:
                problems.append(f"--time {options.time} is not longer than --signal-grace {options.signal_grace}s: "
                                "the job would be told to stop as it starts; lower --signal-grace")
        except FtimgError as exc:
            problems.append(str(exc))
    for extra in options.extras:
        if not extra.startswith("-") or "\n" in extra:
            problems.append(f"--sbatch {extra!r}: expected one sbatch option, e.g. --sbatch=--mem=0")
        elif managed_option(extra):
            problems.append(f"--sbatch {extra}: ftimg writes this one itself; use ftimg's {managed_option(extra)}")
    if options.runtime != "docker" and options.network != "host":
        problems.append(f"--network {options.network}: only the docker runtime starts containers on a network")
    for name in [*options.passed_env, *options.secrets]:
        if not ENV_NAME.fullmatch(name):
            problems.append(f"--env {name}: the script passes variables by name only (sbatch exports their values "
                            "from the submitting shell); give NAME and set it before submitting")
    if problems:
        raise FtimgError("ftimg sbatch: " + ("\n  ".join(["invalid options:", *problems]) if len(problems) > 1
                                             else problems[0]))


def directives(options: SbatchOptions) -> list[str]:
    values = [("job-name", options.job_name), ("nodes", options.nodes), ("ntasks-per-node", 1)]
    if options.gpus_per_node:
        values.append(("gpus-per-node", options.gpus_per_node))
    values += [(name, value) for name, value in (("partition", options.partition), ("time", options.time),
                                                 ("account", options.account), ("qos", options.qos)) if value]
    lines = [f"#SBATCH --{name}={value}" for name, value in values]
    if options.exclusive:
        lines.append("#SBATCH --exclusive")
    lines.append("#SBATCH --requeue" if options.requeue else "#SBATCH --no-requeue")
    if options.signal_grace:
        lines.append(f"#SBATCH --signal=B:USR1@{options.signal_grace}")
    lines += [f"#SBATCH --output={options.log_dir}/%x-%j.out", "#SBATCH --open-mode=append"]
    return lines + [f"#SBATCH {extra}" for extra in options.extras]


def output_dir_lines(spec: RunSpec) -> list[str]:
    if not spec.create_dirs:
        return []
    return ["# The job's output directories: `ftimg sbatch` made them when it could; a script submitted from",
            "# elsewhere makes them here, as the job's user, before any node mounts them.",
            words(["mkdir", "-p", *spec.create_dirs]), ""]


def rendezvous_lines(contract: dict[str, str]) -> list[str]:
    exported = [f'{name}="{value}"' for name, value in contract.items() if name != "NODE_RANK"]
    nccl = [f'{name}="{value}"' for name, value in NCCL_SETTINGS.items()]
    return [
        "# The rendezvous of the image's launcher (the contract `ftimg compose` fills too): the first node of",
        "# the allocation is the master; each node's NODE_RANK is its SLURM_NODEID, set in the step.",
        f"export {' '.join(exported)}",
        f"export {' '.join(nccl)}",
        'echo "ftimg: job $SLURM_JOB_ID, attempt $((${SLURM_RESTART_COUNT:-0} + 1)), nodes $SLURM_JOB_NODELIST,'
        ' master $MASTER_ADDR:$MASTER_PORT"',
        "",
    ]


def preemption_lines(options: SbatchOptions) -> list[str]:
    if options.requeue:
        after = "the job is requeued and resumes from that checkpoint"
        others = ["# (--resume_from_checkpoint auto). A preemption, a failed node or `scontrol requeue` sends SIGTERM",
                  "# to the step itself and requeues the job; this script only waits for the checkpoint."]
    else:
        after = "submit this script again to resume from that checkpoint"
        others = ["# (--resume_from_checkpoint auto). A preemption or scancel sends SIGTERM to the step itself;",
                  "# this script only waits for the checkpoint."]
    return [
        f"# {options.signal_grace} s before the time limit Slurm sends USR1 to this script: the step is told to stop",
        f"# (SIGTERM: the job saves a checkpoint and exits 143), then {after}",
        *others,
        "time_limit_near=0",
        "on_time_limit() {",
        '    echo "ftimg: time limit near: stopping the step at a checkpoint"',
        "    time_limit_near=1",
        '    scancel --signal=TERM "$SLURM_JOB_ID"',
        "}",
        "trap on_time_limit USR1",
        "trap 'echo \"ftimg: SIGTERM: waiting for the step to save a checkpoint\"' TERM",
        "",
    ]


def srun_lines(options: SbatchOptions, step_lines: list[str], env_prefix: list[str]) -> list[str]:
    first = [*env_prefix, "srun", "--ntasks-per-node=1", '--cpus-per-task="$SLURM_CPUS_ON_NODE"',
             "--kill-on-bad-exit=1", f"--immediate={options.step_start_timeout}"]
    if options.gpus_per_node:
        first.append(f"--gpus-per-node={options.gpus_per_node}")
    output = words([f"--output={options.log_dir}/%x-%j-%N.log", "--open-mode=append"])
    return [
        "# One task per node with every CPU Slurm gave the job there; its output goes to one log per node. A step",
        f"# that cannot start within {options.step_start_timeout} s fails instead of waiting for a node forever.",
        continued([" ".join(first), output, *step_lines]) + " &",
        "step=$!",
        "# `wait` returns early when a trapped signal arrives: wait again until the step has ended.",
        'wait "$step"; code=$?',
        'while kill -0 "$step" 2>/dev/null; do wait "$step"; code=$?; done',
        'echo "ftimg: step ended with exit code $code"',
    ]


def ending_lines(options: SbatchOptions) -> list[str]:
    if not options.requeue:
        return ['exit "$code"']
    return [
        'if [ "$time_limit_near" = 1 ] && [ "$code" != 0 ]; then',
        '    echo "ftimg: requeueing job $SLURM_JOB_ID: it resumes from its last checkpoint"',
        '    scontrol requeue "$SLURM_JOB_ID"',
        "fi",
        'exit "$code"',
    ]


def header(spec: RunSpec, options: SbatchOptions, node_image: str) -> list[str]:
    per_node = f"{options.gpus_per_node} GPU(s)" if options.gpus_per_node else "1 CPU process"
    where = {"pyxis": "pyxis/enroot", "apptainer": "apptainer",
             "docker": "each node's Docker engine"}.get(options.runtime, options.runtime)
    outputs = [m.source for m in spec.mounts if not m.read_only and m.target != HF_CACHE_TARGET]
    return [
        "#!/bin/bash",
        f"# Written by ftimg {__version__} (`ftimg sbatch`): {spec.job} on {options.nodes} node(s) x {per_node}.",
        f"# Image {node_image}, run by {where}.",
        f"# Outputs: {' '.join(outputs) or 'none'} (on the shared filesystem, the same path on every node).",
        f"# Logs: {options.log_dir}/{options.job_name}-JOBID.out (this script), "
        f"{options.job_name}-JOBID-NODE.log (one per node).",
        "# Submit again with `sbatch THIS_FILE`.",
    ]


def batch_script(spec: RunSpec, facts: ImageFacts, options: SbatchOptions, node_image: str) -> str:
    """The batch script text; `node_image` is what the nodes run (sbatch_runtimes.node_image)."""
    check_options(options)
    contract = rendezvous_environment(SLURM_RENDEZVOUS["nnodes"], SLURM_RENDEZVOUS["node_rank"],
                                      SLURM_RENDEZVOUS["master_addr"], options.master_port,
                                      max(options.gpus_per_node, 1))
    step = runtime_step(options.runtime, spec, facts, node_image, options.gpus_per_node,
                        [list(contract), list(NCCL_SETTINGS), options.passed_env], options.network,
                        contract["NODE_RANK"], options.secrets)
    lines = [*header(spec, options, node_image), *directives(options), "set -uo pipefail", "",
             *output_dir_lines(spec), *rendezvous_lines(contract), *preemption_lines(options), *step.setup,
             *srun_lines(options, step.lines, step.env_prefix), *ending_lines(options)]
    return "\n".join(lines) + "\n"
