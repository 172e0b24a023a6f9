"""The `ftimg` command line: parses arguments, calls the core, prints. The only place that exits.

Each command family lives in its own module; this one assembles the group.
"""

from __future__ import annotations

import sys

import click

from ftimg import __version__
from ftimg.cli import cluster_commands, image_commands, job_commands
from ftimg.doctor import run_checks
from ftimg.errors import FtimgError


class FtimgGroup(click.Group):
    """Turns every FtimgError into a clear message and exit code 1 (no traceback)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FtimgError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)


@click.group(cls=FtimgGroup)
@click.version_option(__version__, prog_name="ftimg")
def main():
    """Reproducible, pinned Docker images for LLM fine-tuning.

    \b
    Typical session:
      ftimg doctor                 # is the engine ready? GPUs? disk?
      ftimg build                  # base + fetch + build the default profile
      ftimg verify ftimg/train:cu121-torch2.1
    """


@click.command()
@click.option("--probe-node", is_flag=True,
              help="On a Slurm login node, also run one short step on a compute node to see what it can run "
                   "images with (Docker engine, apptainer, enroot).")
def doctor(probe_node):
    """Check the engine, disk, NVIDIA runtime, GPUs and shared memory; say what to fix.

    On a Slurm login node it also checks sbatch and the controller, the pyxis plugin
    (srun --container-image, plugstack.conf) and apptainer.

    \b
    Examples:
      ftimg doctor
      ftimg doctor --probe-node      # on a Slurm login node
    """
    checks = run_checks(probe_node)
    for check in checks:
        mark = click.style("ok  ", fg="green") if check.ok else click.style(
            "FAIL" if check.required else "warn", fg="red" if check.required else "yellow")
        click.echo(f"{mark} {check.name:16} {check.detail}")
        if not check.ok and check.fix:
            click.echo(f"     {'':16} -> {check.fix}")
    if any(not c.ok and c.required for c in checks):
        sys.exit(1)


for command in (doctor, *image_commands.COMMANDS, *job_commands.COMMANDS, *cluster_commands.COMMANDS):
    main.add_command(command)
