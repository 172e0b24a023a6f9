"""The `ftimg` command line: parses arguments, calls the core, prints. The only place that exits."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import click

from . import __version__, engine, lockfile
from .base import ensure_base
from .build import build_profile
from .compose_model import DEFAULT_MASTER_PORT, compose_model
from .compose_model import dumps as compose_dumps
from .doctor import run_checks
from .errors import FtimgError
from .fetch import fetch_profile
from .lock import DEFAULT_INDEX, check_lock, lock_profiles
from .labels import train_tags
from .paths import find_project
from .push import push_image
from .run import (follow_run, job_container, list_job_containers, make_output_dirs, prepare_run, start_run,
                  stop_job)
from .runspec import RunOptions
from .secrets import collect_secrets, compose_secrets, passed_secret_names, split_secret_flags
from .sbatch import SbatchOptions, check_options
from .sbatch_job import prepare_sbatch, write_and_submit
from .sbatch_runtimes import RUNTIMES
from .spec import load_specs
from .verify import verify_image


def _say(message: str) -> None:
    click.echo(message, err=True)


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


def _lock_and_profile(profile: str | None):
    paths = find_project()
    lock = lockfile.load(paths.lock)
    return paths, lock, lock.profile(profile)


@main.command()
@click.option("--check", is_flag=True, help="Do not write; fail if the specs and images.lock disagree.")
@click.option("--default-profile", default="cu121-torch2.1", show_default=True,
              help="Profile used when a command is given none.")
@click.option("--index-url", default=DEFAULT_INDEX, show_default=True, help="PEP 691 package index.")
def lock(check, default_profile, index_url):
    """Resolve docker/profiles/*.toml into images.lock.

    Every transitive distribution is resolved for the image's Python and platform
    (not this host's) and pinned to one file with its sha256.

    \b
    Examples:
      ftimg lock             # rewrite images.lock
      ftimg lock --check     # CI: fail when a spec was edited without re-locking
    """
    paths = find_project()
    specs = load_specs(paths.profiles)
    if check:
        differences = check_lock(specs, lockfile.load(paths.lock))
        if differences:
            listing = "\n  ".join(differences)
            raise FtimgError(f"images.lock is out of date with docker/profiles/:\n  {listing}\n"
                             "Run `ftimg lock` (or `make lock`) and commit images.lock.")
        click.echo(f"images.lock matches {len(specs)} profile specs")
        return
    new_lock = lock_profiles(specs, default_profile, index_url, on_progress=_say)
    paths.lock.write_text(lockfile.dumps(new_lock))
    for name, profile in sorted(new_lock.profiles.items()):
        click.echo(f"{name}: {len(profile.artifacts)} artifacts, lock hash {profile.lock_hash()[:12]}")


@main.command()
@click.argument("profile", required=False)
def fetch(profile):
    """Download every artifact of PROFILE into the wheelhouse, verifying each sha256.

    Files already present are re-verified. A mismatch or a failed download is an
    error naming the file, and nothing unverified is kept.

    \b
    Examples:
      ftimg fetch                    # the default profile
      ftimg fetch cu130-torch2.11
      FTIMG_WHEELHOUSE=/data/wheels ftimg fetch
    """
    paths, _, locked = _lock_and_profile(profile)
    result = fetch_profile(locked, paths.wheelhouse, on_progress=_say)
    click.echo(f"{locked.name}: {len(result.downloaded)} downloaded, {len(result.already_present)} already "
               f"verified, {result.total_bytes / (1 << 30):.2f} GiB in {paths.wheelhouse}")
    for name, why in result.optional_skipped.items():
        click.secho(f"optional {name} not fetched, the image is built without it: {why}", fg="yellow", err=True)


@main.command()
@click.argument("profile", required=False)
@click.option("--rebuild", is_flag=True, help="Rebuild the base even if the engine has it.")
def base(profile, rebuild):
    """Make PROFILE's base image exist, built from Debian packages when absent.

    Needs debootstrap and root; no container registry. To use a registry image
    instead, set [base] image in docker/profiles/PROFILE.toml and `ftimg lock`.

    \b
    Examples:
      sudo ftimg base
      ftimg base --rebuild
    """
    paths, _, locked = _lock_and_profile(profile)
    client = engine.connect()
    ref = ensure_base(client, locked.spec["base"], paths.build_dir, on_progress=_say, rebuild=rebuild)
    click.echo(ref)


@main.command()
@click.argument("profile", required=False)
@click.option("--all", "all_profiles", is_flag=True, help="Build every profile in images.lock.")
@click.option("--no-cache", is_flag=True, help="Rebuild every layer, the stack included.")
@click.option("--skip-fetch", is_flag=True, help="Trust the wheelhouse as it is (it is still hash-checked).")
def build(profile, all_profiles, no_cache, skip_fetch):
    """Build the image of PROFILE (base and wheelhouse first, when needed).

    Tags ftimg/train:PROFILE and ftimg/train:PROFILE-<lock hash>. Build steps stream
    live; a failed build tags nothing.

    \b
    Examples:
      ftimg build                     # default profile
      ftimg build cu130-torch2.11
      ftimg build --all
    """
    paths = find_project()
    lock_ = lockfile.load(paths.lock)
    names = sorted(lock_.profiles) if all_profiles else [lock_.profile(profile).name]
    client = engine.connect()
    for name in names:
        result = build_profile(client, paths, lock_.profile(name), nocache=no_cache, fetch=not skip_fetch,
                               on_progress=_say)
        click.echo(f"built {', '.join(result.tags)} ({result.image_id[7:19]}) in {result.seconds:.0f}s"
                   + ("" if result.stack_built else " (stack reused)"))


@main.command()
def images():
    """List the images ftimg built, with profile, lock hash and size.

    \b
    Example:
      ftimg images
    """
    client = engine.connect()
    rows = engine.list_images(client, "org.ftimg.profile")
    if not rows:
        click.echo("no ftimg images; build one with `ftimg build`")
        return
    click.echo(f"{'TAG':48} {'PROFILE':18} {'LOCK':12} {'SIZE':>9}  CREATED")
    for row in sorted(rows, key=lambda r: r.get("Created", 0), reverse=True):
        labels = row.get("Labels") or {}
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.get("Created", 0)))
        for tag in row.get("RepoTags") or ["<none>"]:
            click.echo(f"{tag:48} {labels.get('org.ftimg.profile', ''):18} "
                       f"{labels.get('org.ftimg.lock-hash', '')[:12]:12} {row.get('Size', 0) / 1e9:8.2f}G  {created}")


@main.command()
@click.argument("image")
@click.option("--digest", is_flag=True, help="Also compute the filesystem content digest (reads every file).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(image, digest, as_json):
    """Prove IMAGE matches images.lock: labels, installed distributions, content digest.

    Exits non-zero and prints a diff (- missing, ~ changed, + extra) on drift. Two
    builds of the same lock have the same --digest.

    \b
    Examples:
      ftimg verify ftimg/train:cu121-torch2.1
      ftimg verify --digest registry.example.com/team/train:cu121-torch2.1
    """
    paths = find_project()
    report = verify_image(engine.connect(), image, lockfile.load(paths.lock), with_digest=digest)
    if as_json:
        click.echo(json.dumps(report.__dict__ | {"ok": report.ok}, indent=2))
    else:
        for line in report.differences:
            click.echo(line)
        status = "matches" if report.ok else f"DOES NOT match ({len(report.differences)} differences)"
        click.echo(f"{image}: {status} images.lock profile {report.profile} ({report.checked} distributions)")
        if report.digest:
            click.echo(f"content digest sha256:{report.digest} ({report.files} files)")
    if not report.ok:
        sys.exit(1)


@main.command()
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


def _default_image() -> str:
    """ftimg/train:<default profile of images.lock>, or FTIMG_IMAGE."""
    if os.environ.get("FTIMG_IMAGE"):
        return os.environ["FTIMG_IMAGE"]
    paths = find_project()
    if paths.lock.exists():
        return train_tags(lockfile.load(paths.lock).profile(None))[0]
    return "ftimg/train:cu121-torch2.1"


def _raise_keyboard_interrupt(_signum, _frame):
    raise KeyboardInterrupt


JOB_CONTEXT = {"ignore_unknown_options": True, "allow_interspersed_args": False}
CONTAINER_OPTIONS = (
    click.option("--image", help="Train image (default: $FTIMG_IMAGE or ftimg/train:<default profile>)."),
    click.option("--ipc", type=click.Choice(["host", "private", "shareable"]),
                 help="IPC namespace; host shares the host's /dev/shm (then --shm-size does not apply)."),
    click.option("--shm-size", help="Size of the job's /dev/shm [default: 16g, or half the host's memory]."),
    click.option("--ulimit", "ulimits", multiple=True, metavar="NAME=SOFT[:HARD]",
                 help="Override a limit (defaults: memlock=-1, stack=67108864)."),
    click.option("-e", "--env", "env", multiple=True, metavar="NAME[=VALUE]",
                 help="Pass a variable; NAME alone takes the value it has where the job starts. `ftimg run` "
                      "stores the value in the container's configuration, which `docker inspect` shows: give "
                      "secrets with --secret. Files (compose, sbatch) take names only: no value is written."),
    click.option("--secret", "secrets", multiple=True, metavar="NAME[=FILE]",
                 help="Hand the job a secret as the read-only file /run/secrets/NAME, exported as $NAME when it "
                      "starts: NAME alone takes your $NAME, NAME=FILE reads FILE. Unlike -e, no value is in "
                      "`docker inspect`, the compose file or the batch script. Secret flags (--hub_token) go "
                      "the same way."),
    click.option("--hf-cache", type=click.Path(file_okay=False),
                 help="Host directory mounted as the job's Hugging Face cache (HF_HOME)."),
)


def container_options(command):
    """The options of every command that starts the train image (run, compose, sbatch), declared once."""
    for option in reversed(CONTAINER_OPTIONS):
        command = option(command)
    return command


@main.command(context_settings=JOB_CONTEXT)
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
    options = RunOptions(image=image or _default_image(), job=job, job_args=list(job_args), gpus=gpus,
                         ipc=ipc, shm_size=shm_size, ulimits=list(ulimits), env=list(env), secrets=list(secrets),
                         hf_cache=hf_cache,
                         user=user, name=name, network=network, stop_timeout=stop_timeout)
    spec = prepare_run(client, options, env_files=list(env_files))
    for note in spec.notes:
        click.secho(f"note: {note}", fg="yellow", err=True)
    gpus_text = "no GPUs (CPU)" if spec.gpus is None else f"GPUs {gpus}"
    _say(f"{spec.name}: {spec.image} {' '.join(spec.command)}")
    _say(f"  as {spec.user}, {gpus_text}, "
         + ("ipc host" if spec.ipc_mode == "host" else f"shm {spec.shm_size / (1 << 30):.1f}G")
         + (f", env {', '.join(sorted(spec.environment))}" if spec.environment else ""))
    for mount in spec.mounts:
        _say(f"  {mount.source} -> {mount.target} ({'ro' if mount.read_only else 'rw'})")
    if spec.secrets:
        _say(f"  secrets {', '.join(s.describe() for s in spec.secrets)} -> /run/secrets (ro)")
    # Set both explicitly: a shell script or CI runner that starts ftimg in the background
    # hands it SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _raise_keyboard_interrupt)
    start_run(client, spec, on_event=_say)
    if detach:
        click.echo(spec.name)
        return

    def write(chunk: bytes) -> None:
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()

    code = follow_run(client, spec.name, stop_timeout, keep, write, on_event=_say)
    _say(f"{spec.name}: exit code {code}" + (" (kept; remove with `docker rm`)" if keep else ""))
    sys.exit(code)


@main.command()
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


@main.command()
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


@main.command()
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


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--nodes", default=1, show_default=True, help="Number of nodes (one service each).")
@click.option("--gpus-per-node", default=0, show_default=True,
              help="GPUs each node reserves and runs one process on; 0 runs one CPU process (gloo).")
@click.option("--master-addr", help="Address of node 0 when the nodes are separate hosts "
                                    "(then every service uses the host network).")
@click.option("--master-port", default=DEFAULT_MASTER_PORT, show_default=True, help="torchrun rendezvous port.")
@container_options
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@click.argument("job")
@click.argument("job_args", nargs=-1, type=click.UNPROCESSED)
def compose(nodes, gpus_per_node, master_addr, master_port, image, ipc, shm_size, ulimits, env, secrets, hf_cache,
            output, job, job_args):
    """Write a docker compose file that runs JOB on NODES nodes with GPUS-PER-NODE GPUs each.

    Host paths in the job flags become bind mounts, as with `ftimg run`. Services are
    node0..nodeN-1; torchrun meets on node0. ftimg's options may come before or
    after JOB; every other flag is the job's. See compose/README.md.

    \b
    Examples:
      ftimg compose lora-sft --gpus-per-node 8 -o train.yml --data_path data.jsonl
      docker compose -f train.yml up
      ftimg compose --nodes 2 --gpus-per-node 8 --master-addr 10.0.0.1 qlora-sft \\
          --data_path /shared/data.jsonl --output_dir /shared/out -o multinode.yml
      # on host k:  docker compose -f multinode.yml up nodek
    """
    if any("=" in name for name in env):
        raise FtimgError("--env takes names only in a compose file (values stay out of the file); "
                         "set them in the environment of `docker compose up`")
    options = RunOptions(image=image or _default_image(), job=job, job_args=list(job_args), ipc=ipc,
                         shm_size=shm_size, ulimits=list(ulimits), hf_cache=hf_cache, secrets=list(secrets))
    # Only SUDO_* (to find the real user): this shell's NCCL/CUDA settings are not baked into the file.
    sudo_env = {k: v for k, v in os.environ.items() if k.startswith("SUDO_")}
    spec = prepare_run(engine.connect(), options, host_env=sudo_env)
    for note in spec.notes:
        click.secho(f"note: {note}", fg="yellow", err=True)
    secret_names, secret_notes = passed_secret_names(spec.secrets, "compose file")
    for note in secret_notes:
        click.secho(f"note: {note}", fg="yellow", err=True)
    model = compose_secrets(compose_model(spec, nodes, gpus_per_node, master_addr, master_port,
                                          sorted({*env, *secret_names})), spec.secrets)
    make_output_dirs(spec)
    header = (f"ftimg compose: {job} on {nodes} node(s) x {gpus_per_node or 'CPU'} "
              f"{'GPU' if gpus_per_node else 'process'}(s) each, {spec.image}\n"
              f"Output directories (created on this host; create them on the others, owned by {spec.user}):\n"
              f"  {' '.join(spec.create_dirs)}")
    text = compose_dumps(model, header)
    if output:
        Path(output).write_text(text)
        _say(f"wrote {output}: services {', '.join(model['services'])}")
    else:
        click.echo(text, nl=False)


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--nodes", default=1, show_default=True, help="Number of nodes; one task each.")
@click.option("--gpus-per-node", default=0, show_default=True,
              help="GPUs each node gets and runs one process on; 0 runs one CPU process per node (gloo).")
@click.option("--runtime", type=click.Choice(RUNTIMES), default="pyxis", show_default=True,
              help="How the nodes run the image: pyxis (srun --container-image), apptainer (apptainer exec) "
                   "or docker (each node's Docker engine).")
@click.option("--node-image", metavar="PATH|REF",
              help="What pyxis or apptainer nodes run instead of --image: a squashfs (pyxis) or SIF (apptainer) "
                   "on the shared filesystem, or a registry reference [default: --image when it names a registry].")
@click.option("--partition", help="Partition [default: the cluster's default]; its size is checked with sinfo.")
@click.option("--time", help="Time limit in Slurm's formats (minutes, HH:MM:SS, D-HH:MM:SS).")
@click.option("--account", help="Account to charge.")
@click.option("--qos", help="Quality of service.")
@click.option("--exclusive", is_flag=True, help="Whole nodes only, shared with no other job.")
@click.option("--sbatch", "extras", multiple=True, metavar="OPTION",
              help="Any other sbatch option, written as is: --sbatch=--mem=0 --sbatch=--constraint=a100.")
@click.option("--job-name", help="Slurm job name [default: ftimg-JOB].")
@click.option("--log-dir", default="slurm-logs", show_default=True, type=click.Path(file_okay=False),
              help="Directory of the logs (one for the script, one per node), on the shared filesystem.")
@click.option("--requeue/--no-requeue", default=True, show_default=True,
              help="Requeue the job when it is preempted, a node fails or its time limit nears; it resumes "
                   "from its last checkpoint.")
@click.option("--signal-grace", default=300, show_default=True,
              help="Seconds before the time limit the job is told to save a checkpoint and stop.")
@click.option("--master-port", default=DEFAULT_MASTER_PORT, show_default=True,
              help="torchrun rendezvous port on the first node.")
@click.option("--network", default="host", show_default=True,
              help="docker runtime: the containers' network; container:{node} joins the network namespace of "
                   "the Slurm node's own container (for nodes that are containers).")
@container_options
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False),
              help="Write the script here [default: stdout, unless --submit].")
@click.option("--submit", is_flag=True, help="Submit the script with sbatch and print the job id.")
@click.argument("job")
@click.argument("job_args", nargs=-1, type=click.UNPROCESSED)
def sbatch(nodes, gpus_per_node, runtime, node_image, partition, time, account, qos, exclusive, extras, job_name,
           log_dir, requeue, signal_grace, master_port, network, image, ipc, shm_size, ulimits, env, secrets,
           hf_cache, output, submit, job, job_args):
    """Write a Slurm batch script that runs JOB on NODES nodes with GPUS-PER-NODE GPUs each; --submit it.

    One task per node; in each, the image's launcher starts one process per GPU and
    meets the others on the first node of the allocation (MASTER_ADDR, NODE_RANK and
    NNODES come from Slurm, as in `ftimg compose`). Host paths in the job flags are
    mounted as with `ftimg run`: they must be on a filesystem every node shares, at the
    same path. The job is requeued on preemption, node failure or before its time
    limit and resumes from its last checkpoint. ftimg's options may come before or
    after JOB; every other flag is the job's. See docs/slurm.md.

    \b
    Examples:
      ftimg push ftimg/train:cu121-torch2.1 registry.example.com/team/train
      ftimg sbatch qlora-sft --nodes 4 --gpus-per-node 8 --partition gpu --time 1-00:00:00 \\
          --image registry.example.com/team/train:cu121-torch2.1 -e HF_TOKEN \\
          --data_path /shared/data/train.jsonl --output_dir /shared/out/qlora --submit
      ftimg sbatch lora-sft --runtime apptainer --node-image /shared/train.sif -o train.sbatch
      ftimg sbatch lora-sft --nodes 2 --runtime docker --output_dir /shared/out/lora --submit
    """
    run_options = RunOptions(image=image or _default_image(), job=job, job_args=list(job_args), ipc=ipc,
                             shm_size=shm_size, ulimits=list(ulimits), hf_cache=hf_cache)
    log_dir = os.path.abspath(log_dir)
    # The spec drops secret flags from the command; their names go to the script's passed variables.
    secret_inputs = collect_secrets(split_secret_flags(list(job_args))[1], secrets, [], os.getcwd())
    if any(s.origin == "file" for s in secret_inputs):
        raise FtimgError("--secret NAME=FILE: a batch script takes names only; export NAME where you submit "
                         "(sbatch passes your environment to the job) and give --secret NAME")
    secret_names, secret_notes = passed_secret_names(secret_inputs, "batch script")
    for note in secret_notes:
        click.secho(f"note: {note}", fg="yellow", err=True)
    options = SbatchOptions(job_name=job_name or f"ftimg-{job}", log_dir=log_dir, nodes=nodes,
                            gpus_per_node=gpus_per_node, runtime=runtime, node_image=node_image or "",
                            partition=partition, time=time, account=account, qos=qos, exclusive=exclusive,
                            extras=list(extras), requeue=requeue, signal_grace=signal_grace,
                            master_port=master_port, network=network,
                            passed_env=sorted({*env, *secret_names}))
    check_options(options)  # bad options fail before the engine or the cluster is asked anything
    plan = prepare_sbatch(engine.connect(), run_options, options, check_cluster=submit)
    for note in plan.notes:
        click.secho(f"note: {note}", fg="yellow", err=True)
    job_id = write_and_submit(plan, log_dir, output, submit)
    where = f"partition {plan.partition.name}" if plan.partition else "the default partition"
    _say(f"ftimg sbatch: {job} on {nodes} node(s) of {where}, runtime {runtime}, image {plan.node_image}")
    if output:
        _say(f"wrote {output}")
    if job_id:
        _say(f"submitted job {job_id}; logs: {log_dir}/{options.job_name}-{job_id}.out and "
             f"{options.job_name}-{job_id}-NODE.log")
        click.echo(job_id)
    elif not output:
        click.echo(plan.script, nl=False)


@main.command()
@click.argument("image")
@click.argument("destination", metavar="REGISTRY/REPO[:TAG]")
def push(image, destination):
    """Push IMAGE to REGISTRY/REPO, tagged :<profile>, :<profile>-<lock hash> (and :TAG).

    Uses the credentials `docker login` stored (config.json, credential helpers);
    ftimg never prints or stores them. Prints the pushed manifest digest.

    \b
    Examples:
      docker login registry.example.com
      ftimg push ftimg/train:cu121-torch2.1 registry.example.com/team/train
      ftimg push ftimg/train:cu121-torch2.1 localhost:5000/train:exp42
    """
    result = push_image(engine.connect(), image, destination, on_progress=_say)
    for ref in result.refs:
        click.echo(f"{ref}@{result.digest}")
    _say(f"pushed {len(result.refs)} tag(s) in {result.seconds:.0f}s, manifest {result.size} bytes")
