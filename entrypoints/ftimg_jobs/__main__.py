"""Dispatcher: ``python -m ftimg_jobs JOB [config.yaml] [--flag value ...]``.

Looks the job up in catalogue.json, re-executes itself under torchrun when the
job is distributed and more than one process is wanted (one per GPU, or
NPROC_PER_NODE; NNODES/NODE_RANK/MASTER_ADDR/MASTER_PORT for several nodes),
then calls the job module's ``main(job, argv) -> exit code``.
"""

import importlib
import os
import signal
import sys

from ftimg_jobs.args.config import launcher_setting
from ftimg_jobs.args.flag_table import alias_note
from ftimg_jobs.catalogue import describe_jobs, find_job, load_catalogue
from ftimg_jobs.errors import JobError
from ftimg_jobs.host_paths import PATH_MAP_ENV, host_paths
from ftimg_jobs.launch import SIGNAL_EXIT_CODES, build_launch_command, run_launch
from ftimg_jobs.output_cleanup import cleanup_if_asked
from ftimg_jobs.secrets import export_secret_files, move_secret_flags, say, secrets_summary

USAGE = "usage: python -m ftimg_jobs JOB [config.yaml] [--flag value ...]   (JOB --help lists its flags)"


def visible_gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def exit_on_signal(signum, _frame):
    # As PID 1 in a container, a process ignores SIGTERM unless it installs a
    # handler; until training installs its checkpointing one, stop right away.
    sys.exit(SIGNAL_EXIT_CODES[signum])


def launch_environment(argv: list, env: dict) -> dict:
    """``--use_ddp false`` (seed 003) asks for one process; true is what the launcher does anyway."""
    if launcher_setting(argv, "use_ddp") == "false":
        return {**env, "NPROC_PER_NODE": "1"}
    return env


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # Before anything else: /run/secrets/NAME (ftimg run --secret, --hub_token) becomes $NAME, and so does a
    # secret flag given to the job directly, so neither the launch echo nor the workers' argv carry a value.
    from_files = export_secret_files(os.environ)
    argv, moved = move_secret_flags(argv, os.environ)
    summary = secrets_summary(os.environ, from_files)
    if summary and "LOCAL_RANK" not in os.environ:
        for note in [summary, *moved]:
            say(note)
    signal.signal(signal.SIGTERM, exit_on_signal)
    jobs = load_catalogue()
    if not argv or argv[0] in ("-h", "--help"):
        print(f"{USAGE}\n\njobs:\n{describe_jobs(jobs)}")
        return 0 if argv else 2
    try:
        spec = find_job(jobs, argv[0])
        if "LOCAL_RANK" not in os.environ:
            cleaned = cleanup_if_asked(spec.name, argv[1:])
            if cleaned:
                print(f"ftimg_jobs: emptied {cleaned} (--cleanup_output_dir_on_start)", file=sys.stderr, flush=True)
        if spec.distributed and "LOCAL_RANK" not in os.environ:
            launch = build_launch_command(argv, launch_environment(argv, dict(os.environ)), visible_gpu_count())
            if launch is not None:
                return run_launch(*launch)
        module = importlib.import_module(spec.module)
        return module.main(spec.name, argv[1:]) or 0
    except JobError as error:
        message = host_paths(str(error), os.environ.get(PATH_MAP_ENV, "")) + alias_note(argv, str(error))
        print(f"ftimg_jobs {argv[0]}: error: {message}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
