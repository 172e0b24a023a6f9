"""`ftimg sbatch`: gather what the batch script needs, check it against the cluster, write it, submit it.

The script text comes from the pure `sbatch` module. This module reads the image from the
Docker engine (its job list, environment and entrypoint: the nodes need no engine for that),
checks the partition with sinfo, makes the output and log directories on the shared
filesystem, and submits with sbatch. It returns results and never prints.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from ftimg import engine
from ftimg.cluster import slurm
from ftimg.cluster.runtimes import image_facts, node_image
from ftimg.cluster.sbatch import SbatchOptions, batch_script, check_options
from ftimg.errors import FtimgError
from ftimg.job.run import make_output_dirs, path_kind, prepare_run
from ftimg.job.runspec import RunOptions, RunSpec
from ftimg.job.secrets import check_not_also_env, exposed_env_note, is_secret, passed_secret_names


@dataclass
class SbatchPlan:
    script: str
    spec: RunSpec
    node_image: str
    partition: slurm.Partition | None
    notes: list[str] = field(default_factory=list)


def docker_only_options(run_options: RunOptions) -> list[str]:
    given = [("--ipc", run_options.ipc), ("--shm-size", run_options.shm_size), ("--ulimit", run_options.ulimits)]
    return [flag for flag, value in given if value]


def prepare_sbatch(client, run_options: RunOptions, options: SbatchOptions, check_cluster: bool) -> SbatchPlan:
    """The batch script for the job, checked against the image, this host and (when `check_cluster`, or
    whenever sinfo is here) the partition; nothing is written or submitted yet."""
    check_options(options)
    if options.runtime != "docker" and docker_only_options(run_options):
        raise FtimgError(f"{', '.join(docker_only_options(run_options))}: only the docker runtime starts its own "
                         f"containers; {options.runtime} steps share the node's /dev/shm and IPC and take the "
                         "limits Slurm gives the job (see docs/slurm.md)")
    # The script must not carry this shell's settings: only SUDO_* (to find the real user), as for compose.
    sudo_env = {k: v for k, v in os.environ.items() if k.startswith("SUDO_")}
    spec = prepare_run(client, run_options, host_env=sudo_env)
    # The run spec's secrets (secret flags and --secret), as for `ftimg run` and `ftimg compose`.
    check_not_also_env(spec.secrets, options.passed_env)
    if any(secret.origin == "file" for secret in spec.secrets):
        raise FtimgError("--secret NAME=FILE: a batch script takes names only; export NAME where you submit "
                         "(sbatch passes your environment to the job) and give --secret NAME")
    secret_names, secret_notes = passed_secret_names(spec.secrets, "batch script")
    options = replace(options, secrets=secret_names)
    facts = image_facts(engine.inspect_image(client, run_options.image), run_options.image)
    cwd = os.getcwd()
    image = node_image(options.runtime, run_options.image, options.node_image or None, cwd, path_kind)
    notes = [*spec.notes, *secret_notes]
    notes += [f"--env {name}: not set in this shell; sbatch passes the submitting shell's value, so set it "
              "before submitting" for name in options.passed_env if name not in os.environ]
    if options.runtime == "docker":
        notes += [exposed_env_note(name) for name in options.passed_env if is_secret(name)]
    partition = None
    if check_cluster or shutil.which("sinfo"):
        partition, capacity_notes = slurm.check_capacity(slurm.partitions(), options.partition, options.nodes,
                                                         options.gpus_per_node)
        notes += capacity_notes
    else:
        notes.append("sinfo is not on PATH: the partition's size was not checked (submit on a login node)")
    return SbatchPlan(batch_script(spec, facts, options, image), spec, image, partition, notes)


def write_and_submit(plan: SbatchPlan, log_dir: str, output: str | None, submit: bool) -> str | None:
    """Make the output and log directories, write the script to `output`, submit it; the job id when submitted."""
    make_output_dirs(plan.spec)
    try:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FtimgError(f"--log-dir {log_dir}: cannot create it ({exc.strerror})") from None
    if output:
        Path(output).write_text(plan.script)
        Path(output).chmod(0o755)
    return slurm.submit(plan.script) if submit else None
