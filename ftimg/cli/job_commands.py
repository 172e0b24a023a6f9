"""Commands that run a job in a container on this host and look after it: run, ps, logs, stop."""

from __future__ import annotations

import signal
import sys

import click

from ftimg import engine
from ftimg.cli.common import JOB_CONTEXT, container_options, default_image, raise_keyboard_interrupt, say
from ftimg.job.run import follow_run, job_container, list_job_containers, prepare_run, start_run, stop_job
from ftimg.job.runspec import RunOptions


@click.command(context_settings=JOB_CONTEXT)
@container_options
@click.option("--gpus", help="GPUs to give the job: all, a count (2) or device=0,2. Omit to run on CPU.")
@click.option("--env-file", "env_files", multiple=True, type=click.Path(dir_okay=False),
              help="File of NAME=VALUE lines passed to the job (docker's format).")
@click.option("--user", help="UID[:GID] to run as [default: yours, so outputs are yours; never root].")
@click.option("--name", help="Container name [default: ftimg-JOB-<time>-<random>].")
@click.option("--network", help="Docker network, e.g. host for multi-node NCCL [default: bridge].")
@click.option("--stop-timeout", default=300, show_default=True,
              help="Seconds a stopped job gets to save a checkpoint before it is killed.")
@click.option("--keep", is_flag=True, help="Keep the container after the job ends (inspect it, read its logs).")
@click.option("-d", "--detach", is_flag=True, help="Start the job and return; the container is kept.")
@click.argument("job")
@click.argument("job_args", nargs=-1, type=click.UNPROCESSED)
def run(image, gpus, ipc, shm_size, ulimits, env, secrets, env_files, hf_cache, user, name, network, stop_timeout,
        keep, detach, job, job_args):
    """Run JOB of the train image in a container, on your files, as you.

    JOB's flags are the job's own (Hugging Face style), given after JOB. Host paths
    in them (--model_name_or_path, --data_path, --output_dir, a YAML config as the
    first argument, ...) are mounted into the container, inputs read-only, outputs
    read-write; output directories are created first and belong to you. NCCL_*,
    TORCH_*, CUDA_VISIBLE_DEVICES and OMP_NUM_THREADS pass through from this shell.
    Output streams live; the job's exit code is ftimg's; Ctrl-C stops the job with
    SIGTERM (it saves a checkpoint) and removes the container unless --keep.

    \b
    Examples:
      ftimg run lora-sft                                   # CPU, embedded tiny model
      ftimg run --gpus all qlora-sft --model_name_or_path ./models/qwen2-7b \\
          --data_path data/train.jsonl --output_dir out/qlora
      ftimg run --gpus device=0,2 -e HF_TOKEN --hf-cache ~/.cache/huggingface \\
          lora-sft config.yaml --num_train_epochs 2
      ftimg run -d infer --input_path prompts.jsonl --output_path out/pred.jsonl
      ftimg run --secret HF_TOKEN lora-sft --push_to_hub --hub_model_id me/my-lora
    """
    client = engine.connect()
    options = RunOptions(image=image or default_image(), job=job, job_args=list(job_args), gpus=gpus,
                         ipc=ipc, shm_size=shm_size, ulimits=list(ulimits), env=list(env), secrets=list(secrets),
                         hf_cache=hf_cache,
                         user=user, name=name, network=network, stop_timeout=stop_timeout)
    spec = prepare_run(client, options, env_files=list(env_files))
    for note in spec.notes:
        click.secho(f"note: {note}", fg="yellow", err=True)
    gpus_text = "no GPUs (CPU)" if spec.gpus is None else f"GPUs {gpus}"
    say(f"{spec.name}: {spec.image} {' '.join(spec.command)}")
    say(f"  as {spec.user}, {gpus_text}, "
         + ("ipc host" if spec.ipc_mode == "host" else f"shm {spec.shm_size / (1 << 30):.1f}G")
         + (f", env {', '.join(sorted(spec.environment))}" if spec.environment else ""))
    for mount in spec.mounts:
        say(f"  {mount.source} -> {mount.target} ({'ro' if mount.read_only else 'rw'})")
    if spec.secrets:
        say(f"  secrets {', '.join(s.describe() for s in spec.secrets)} -> /run/secrets (ro)")
    # Set both explicitly: a shell script or CI runner that starts ftimg in the background
    # hands it SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, raise_keyboard_interrupt)
    start_run(client, spec, on_event=say)
    if detach:
        click.echo(spec.name)
        return

    def write(chunk: bytes) -> None:
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()

    code = follow_run(client, spec.name, stop_timeout, keep, write, on_event=say)
    say(f"{spec.name}: exit code {code}" + (" (kept; remove with `docker rm`)" if keep else ""))
    sys.exit(code)


@click.command()
def ps():
    """List the job containers ftimg created (running and exited).

    \b
    Example:
      ftimg ps
    """
    containers = list_job_containers(engine.connect())
    if not containers:
        click.echo("no ftimg job containers; start one with `ftimg run -d JOB`")
        return
    click.echo(f"{'NAME':40} {'JOB':10} {'STATUS':24} {'IMAGE':32} OUTPUT")
    for c in containers:
        click.echo(f"{c.name:40} {c.job:10} {c.status:24} {c.image:32} {c.output}")


@click.command()
@click.argument("name")
@click.option("-f", "--follow", is_flag=True, help="Keep streaming while the job runs.")
def logs(name, follow):
    """Print the output of job container NAME (from `ftimg ps`).

    \b
    Examples:
      ftimg logs ftimg-lora-sft-20250101-120000-ab12
      ftimg logs -f ftimg-lora-sft-20250101-120000-ab12
    """
    client = engine.connect()
    job_container(client, name)
    try:
        for chunk in engine.container_output(client, name, follow=follow):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
    except KeyboardInterrupt:
        sys.exit(130)


@click.command()
@click.argument("name")
@click.option("-t", "--time", "stop_timeout", default=300, show_default=True,
              help="Seconds the job gets to save a checkpoint before it is killed.")
@click.option("--rm", "remove", is_flag=True, help="Remove the container once it has stopped.")
def stop(name, stop_timeout, remove):
    """Stop job container NAME: SIGTERM (the job saves a checkpoint), SIGKILL after --time.

    \b
    Examples:
      ftimg stop ftimg-lora-sft-20250101-120000-ab12
      ftimg stop --rm -t 600 ftimg-full-sft-20250101-120000-cd34
    """
    code = stop_job(engine.connect(), name, stop_timeout, remove)
    click.echo(f"{name}: stopped, exit code {code}" + (", removed" if remove else ""))


COMMANDS = (run, ps, logs, stop)
