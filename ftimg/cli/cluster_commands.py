"""Commands that take a job beyond one host: compose files and Slurm batch scripts."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ftimg import engine
from ftimg.cli.common import container_options, default_image, say
from ftimg.cluster.compose import DEFAULT_MASTER_PORT, compose_model
from ftimg.cluster.compose import dumps as compose_dumps
from ftimg.cluster.runtimes import RUNTIMES
from ftimg.cluster.sbatch import SbatchOptions, check_options
from ftimg.cluster.submit import prepare_sbatch, write_and_submit
from ftimg.errors import FtimgError
from ftimg.job.run import make_output_dirs, prepare_run
from ftimg.job.runspec import RunOptions
from ftimg.job.secrets import check_not_also_env, compose_secrets, passed_secret_names


@click.command(context_settings={"ignore_unknown_options": True})
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
    options = RunOptions(image=image or default_image(), job=job, job_args=list(job_args), ipc=ipc,
                         shm_size=shm_size, ulimits=list(ulimits), hf_cache=hf_cache, secrets=list(secrets))
    # Only SUDO_* (to find the real user): this shell's NCCL/CUDA settings are not baked into the file.
    sudo_env = {k: v for k, v in os.environ.items() if k.startswith("SUDO_")}
    spec = prepare_run(engine.connect(), options, host_env=sudo_env)
    check_not_also_env(spec.secrets, env)
    for note in spec.notes:
        click.secho(f"note: {note}", fg="yellow", err=True)
    secret_names, secret_notes = passed_secret_names(spec.secrets, "compose file")
    if secret_names:
        # docker-compose 1.29 takes a secret from a file only (no `environment:` source): say what that shows.
        secret_notes.append(f"{', '.join(secret_names)}: compose passes these through the services' environment, "
                            "where `docker inspect` shows them; --secret NAME=FILE mounts a file instead")
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
        say(f"wrote {output}: services {', '.join(model['services'])}")
    else:
        click.echo(text, nl=False)


@click.command(context_settings={"ignore_unknown_options": True})
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
    # Secret flags and --secret become the run spec's secrets, as for run and compose (prepare_sbatch).
    run_options = RunOptions(image=image or default_image(), job=job, job_args=list(job_args), ipc=ipc,
                             shm_size=shm_size, ulimits=list(ulimits), hf_cache=hf_cache, secrets=list(secrets))
    log_dir = os.path.abspath(log_dir)
    options = SbatchOptions(job_name=job_name or f"ftimg-{job}", log_dir=log_dir, nodes=nodes,
                            gpus_per_node=gpus_per_node, runtime=runtime, node_image=node_image or "",
                            partition=partition, time=time, account=account, qos=qos, exclusive=exclusive,
                            extras=list(extras), requeue=requeue, signal_grace=signal_grace,
                            master_port=master_port, network=network,
                            passed_env=sorted(set(env)))
    check_options(options)  # bad options fail before the engine or the cluster is asked anything
    plan = prepare_sbatch(engine.connect(), run_options, options, check_cluster=submit)
    for note in plan.notes:
        click.secho(f"note: {note}", fg="yellow", err=True)
    job_id = write_and_submit(plan, log_dir, output, submit)
    where = f"partition {plan.partition.name}" if plan.partition else "the default partition"
    say(f"ftimg sbatch: {job} on {nodes} node(s) of {where}, runtime {runtime}, image {plan.node_image}")
    if output:
        say(f"wrote {output}")
    if job_id:
        say(f"submitted job {job_id}; logs: {log_dir}/{options.job_name}-{job_id}.out and "
             f"{options.job_name}-{job_id}-NODE.log")
        click.echo(job_id)
    elif not output:
        click.echo(plan.script, nl=False)


COMMANDS = (compose, sbatch)
