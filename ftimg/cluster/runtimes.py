"""How each container runtime starts the train image on a Slurm node: its part of the srun step. Pure.

- pyxis: srun's own `--container-*` flags (the SPANK plugin, enroot underneath); the task runs in the image.
- apptainer: srun runs `apptainer exec` on each node; the task runs in the image.
- docker: srun runs a small shell function on each node that `docker run`s the image on the node's engine
  with what `ftimg run` gives a container (the same RunSpec: user, /dev/shm, ulimits, mounts, labels).

pyxis and apptainer hand the job's environment to the container, and srun hands the submitting shell's
environment to the job. Both runtimes document that the image's variables win, but the step sets the
image's environment again explicitly, so PATH, PYTHONPATH and FTIMG_* are the image's whatever the
runtime's version or configuration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from ftimg.cluster.compose import size_text
from ftimg.cluster.shell import Expansion, word, words
from ftimg.errors import FtimgError
from ftimg.job.runspec import PathKind, RunSpec
from ftimg.job.secrets import secrets_dir

RUNTIMES = ("pyxis", "apptainer", "docker")
# torchrun's per-worker variables. Set by enroot's PyTorch hook or a submitting shell that itself runs
# under torchrun, they would make the image's launcher believe it is a worker already.
WORKER_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK")
# A SIF or squashfs is read-only: caches (HF datasets, Triton) go to the runtime's HOME, not the image's.
RUNTIME_KEEPS = ("HOME",)
STEP_WORKDIR = "/tmp"
NODE_FUNCTION = "ftimg_node"
NODE_NAME = "$SLURMD_NODENAME"
# Slurm's own list of the GPUs it gave the step, as the node numbers them (CUDA_VISIBLE_DEVICES may be
# renumbered inside a device cgroup, which a container started by the node's engine is not in).
SLURM_GPU_IDS = "${SLURM_STEP_GPUS:-$SLURM_JOB_GPUS}"
SLURM_IDENTITY = ("SLURM_JOB_ID", "SLURMD_NODENAME")
PULL_TIMEOUT_S = 1800
REMOVE_TIMEOUT_S = 60
MOUNT_PATH_UNSAFE = re.compile(r"[,:\s]")


@dataclass(frozen=True)
class ImageFacts:
    """What the step needs to know about the image: its environment and its entrypoint."""

    env: dict[str, str]
    entrypoint: tuple[str, ...]


@dataclass
class Step:
    """The runtime's part of the srun step.

    setup: script lines before srun (a node function); env_prefix: NAME=VALUE words in front of srun;
    lines: srun's runtime flags and the command each node runs, one continuation line each.
    """

    setup: list[str]
    env_prefix: list[str]
    lines: list[str]


def image_facts(inspect: dict, image: str) -> ImageFacts:
    """ImageFacts from `docker image inspect`."""
    config = inspect.get("Config") or {}
    env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    entrypoint = tuple(config.get("Entrypoint") or ())
    if not entrypoint:
        raise FtimgError(f"{image} has no ENTRYPOINT: it is not an ftimg train image (build one with `ftimg build`)")
    return ImageFacts(env, entrypoint)


def is_registry_ref(ref: str) -> bool:
    """Whether a docker reference names its registry (registry.example.com/…, host:5000/…, localhost/…)."""
    first, slash, _ = ref.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def enroot_uri(ref: str) -> str:
    """pyxis' form of a registry image: `[REGISTRY#]IMAGE[:TAG]` (enroot separates the registry with #)."""
    ref = ref.removeprefix("docker://")
    if "#" in ref or not is_registry_ref(ref):
        return ref
    registry, _, rest = ref.partition("/")
    return f"{registry}#{rest}"


def node_image(runtime: str, image: str, given: str | None, cwd: str, path_kind: PathKind) -> str:
    """What the nodes run: a registry image, a squashfs (pyxis) or SIF (apptainer) on the shared filesystem,
    or for docker the image itself from each node's engine."""
    if runtime == "docker":
        if given:
            raise FtimgError(f"--node-image {given}: the docker runtime runs --image ({image}) from each node's "
                             "Docker engine; --node-image is for pyxis (squashfs) and apptainer (SIF)")
        return image
    if given:
        if "://" in given and runtime == "apptainer":
            return given
        if given.startswith(("/", "./", "../")) or given.endswith((".sqsh", ".squashfs", ".sif")):
            path = str(PurePosixPath(cwd) / given) if not given.startswith("/") else given
            if path_kind(path) != "file":
                raise FtimgError(f"--node-image {given}: no such file ({path}); the nodes read it from the shared "
                                 f"filesystem. {how_to_make_node_image(runtime, image)}")
            return path
        return enroot_uri(given) if runtime == "pyxis" else f"docker://{given.removeprefix('docker://')}"
    if is_registry_ref(image):
        return enroot_uri(image) if runtime == "pyxis" else f"docker://{image}"
    raise FtimgError(f"--runtime {runtime}: the nodes cannot read {image} from this machine's Docker engine. "
                     + how_to_make_node_image(runtime, image))


def how_to_make_node_image(runtime: str, image: str) -> str:
    if runtime == "pyxis":
        return ("Push it (`ftimg push IMAGE REGISTRY/REPO`) and pass --image REGISTRY/REPO:TAG, or make a "
                f"squashfs on the shared filesystem (`enroot import -o /shared/train.sqsh dockerd://{image}`) "
                "and pass --node-image /shared/train.sqsh")
    return ("Push it (`ftimg push IMAGE REGISTRY/REPO`) and pass --image REGISTRY/REPO:TAG, or build a SIF on "
            f"the shared filesystem (`apptainer build /shared/train.sif docker-daemon://{image}`) and pass "
            "--node-image /shared/train.sif")


def check_mount_paths(spec: RunSpec) -> None:
    """Every runtime lists mounts as SRC:DST[:ro] (pyxis and apptainer comma-separated too)."""
    bad = [m.source for m in spec.mounts if MOUNT_PATH_UNSAFE.search(m.source)]
    if bad:
        raise FtimgError(f"cannot mount {', '.join(bad)} into a Slurm step: a path with a comma, colon or space "
                         "cannot be written as a bind mount; rename it or link it from a plain path")


def in_image_command(spec: RunSpec, facts: ImageFacts, node_rank: str) -> list[str]:
    """The command a pyxis or apptainer task runs inside the image, one continuation line per part:
    worker variables removed, this node's rank, the image's environment, then the image's entrypoint."""
    unset = " ".join(f"-u {name}" for name in WORKER_VARIABLES)
    script = f'exec env {unset} NODE_RANK="{node_rank}" "$@"'
    environment = {name: value for name, value in facts.env.items() if name not in RUNTIME_KEEPS}
    environment.update(spec.environment)
    return ([words(["bash", "-c", script, "ftimg-node"])]
            + [word(f"{name}={value}") for name, value in environment.items()]
            + [words([*facts.entrypoint, *spec.command])])


def pyxis_step(spec: RunSpec, facts: ImageFacts, image: str, gpus_per_node: int, node_rank: str) -> Step:
    # The image is not a CUDA base image and sets no NVIDIA_VISIBLE_DEVICES, which enroot's GPU hook needs.
    env_prefix = ["NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"] if gpus_per_node else []
    lines = [word(f"--container-image={image}")]
    if spec.mounts:
        lines.append(word("--container-mounts=" + ",".join(
            f"{m.source}:{m.target}" + (":ro" if m.read_only else "") for m in spec.mounts)))
    lines.append(words([f"--container-workdir={STEP_WORKDIR}", "--no-container-entrypoint"]))
    setup = ["# pyxis runs each node's task in the image (imported when a node first needs it). The task gets this",
             "# script's environment: the image's own variables are set again in the command so that they win,",
             "# and torchrun's worker variables are removed."]
    return Step(setup, env_prefix, lines + in_image_command(spec, facts, node_rank))


def apptainer_step(spec: RunSpec, facts: ImageFacts, image: str, gpus_per_node: int, node_rank: str) -> Step:
    lines = [words(["apptainer", "exec", *(["--nv"] if gpus_per_node else []), "--pwd", STEP_WORKDIR])]
    lines += [words(["--bind", f"{m.source}:{m.target}" + (":ro" if m.read_only else "")]) for m in spec.mounts]
    lines.append(word(image))
    setup = ["# apptainer runs each node's task in the image. The task gets this script's environment: the image's",
             "# own variables are set again in the command so that they win, and torchrun's worker variables are",
             "# removed."]
    return Step(setup, [], lines + in_image_command(spec, facts, node_rank))


def docker_network(network: str) -> str:
    """`host`, a network name, or `container:{node}`: the network namespace of the Slurm node's own
    container, for clusters whose nodes are containers themselves."""
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+|container:\{node\}", network):
        raise FtimgError(f"--network {network}: expected host, a Docker network name, or container:{{node}}")
    return Expansion(f'"container:{NODE_NAME}"') if network == "container:{node}" else network


def secret_file_lines(secrets: list[str]) -> list[str]:
    """Node-function lines that write each secret of the step's environment into a file for the container.

    As `ftimg run` does (ftimg/job/secret_files.py): a fresh 0700 directory on a RAM filesystem
    ($XDG_RUNTIME_DIR when the node has it, else /dev/shm), one 0444 file per secret (the container's
    user may differ from the node's: the directory keeps everyone else out), bind-mounted read-only at
    /run/secrets/NAME, which the jobs export as $NAME. The directory is removed as soon as the container
    runs (its mounts keep the files) or the docker command has ended, so `docker inspect` shows paths only.
    """
    if not secrets:
        return []
    lines = [
        "# Secrets go to the container as read-only files, never in its configuration (`docker inspect`).",
        "local secrets_parent=/dev/shm",
        'if [ -n "${XDG_RUNTIME_DIR:-}" ] && [ -d "$XDG_RUNTIME_DIR" ] && [ -w "$XDG_RUNTIME_DIR" ]; then',
        '    secrets_parent="$XDG_RUNTIME_DIR"',
        "fi",
        "local secrets",
        'secrets="$(mktemp -d "$secrets_parent/ftimg-secrets.XXXXXX")" || return 1',
    ]
    for name in secrets:
        # printf is a builtin: the value is in no process's arguments.
        missing = "not set on this node: export it where you submit (sbatch passes your environment to the job)"
        lines.append(f"( umask 0333 && printf '%s' \"${{{name}:?{missing}}}\" > \"$secrets/{name}\" ) "
                     '|| { rm -rf "$secrets"; return 1; }')
    lines += [
        "# $$ becomes the docker command below (exec): wait for its container to run, or for it to end.",
        '( while kill -0 $$ 2>/dev/null && [ "$(docker inspect --format \'{{.State.Running}}\' "$name" 2>/dev/null)"'
        ' != true ]; do sleep 1; done; rm -rf "$secrets" ) &',
    ]
    return lines


def docker_run_flags(spec: RunSpec, network: str, gpus_per_node: int, passed_env: list[list[str]],
                     secrets: list[str] = ()) -> list[str]:
    """`docker run` flags for the RunSpec `ftimg run` would create, one continuation line per group;
    `secrets` are mounted from the files secret_file_lines writes."""
    limits = ["--init"] if spec.init else []
    limits += ["--user", spec.user]
    if spec.ipc_mode:
        limits += ["--ipc", spec.ipc_mode]
    if spec.shm_size:
        limits += ["--shm-size", size_text(spec.shm_size)]
    for name, (soft, hard) in sorted(spec.ulimits.items()):
        limits += ["--ulimit", f"{name}={soft}:{hard}"]
    lines = [words(limits), words(["--network", docker_network(network)])]
    if gpus_per_node:
        # docker reads --gpus as CSV: a list of devices must itself be quoted, '"device=0,1"'.
        lines.append(words(["--gpus", Expansion(f'"\\"device={SLURM_GPU_IDS}\\""')]))
    # By name: docker takes each value from the step's environment (Slurm's copy of the submitting shell's).
    lines += [words(part for name in group for part in ("--env", name)) for group in passed_env if group]
    if spec.environment:
        lines.append(words(part for name, value in sorted(spec.environment.items())
                           for part in ("--env", f"{name}={value}")))
    lines += [words(["--volume", f"{m.source}:{m.target}" + (":ro" if m.read_only else "")]) for m in spec.mounts]
    # --mount, not --volume: a missing file fails the start instead of appearing as an empty directory.
    lines += [words(["--mount", Expansion(f'"type=bind,source=$secrets/{name},target={secrets_dir()}/{name},readonly"')])
              for name in secrets]
    lines.append(words(part for name, value in sorted(spec.labels.items()) for part in ("--label", f"{name}={value}")))
    return lines


def docker_step(spec: RunSpec, passed_env: list[list[str]], network: str, gpus_per_node: int,
                node_rank: str, secrets: list[str] = ()) -> Step:
    name = Expansion('"$name"')
    # Docker hands the container none of the step's environment: the job needs its Slurm job id and node
    # to tell a second job how to stop it (`scancel ID` in the output lock's error).
    run = [words(["exec", "docker", "run", "--rm", "--name", name]),
           *docker_run_flags(spec, network, gpus_per_node, [list(SLURM_IDENTITY), *passed_env], secrets),
           words([spec.image, *spec.command])]
    image = word(spec.image)
    setup = [
        "# What srun starts on each node: the image on the node's Docker engine, with the settings `ftimg run`",
        "# gives a container. A container left by an earlier attempt of this job (a requeued job keeps its id)",
        "# is removed first; a missing image is pulled, within a time limit.",
        f"{NODE_FUNCTION}() {{",
        f'    local name="ftimg-{spec.job}-$SLURM_JOB_ID-{NODE_NAME}"',
        f'    timeout {REMOVE_TIMEOUT_S} docker rm --force "$name" >/dev/null 2>&1 || true',
        f"    if ! docker image inspect {image} >/dev/null 2>&1; then",
        f"        timeout {PULL_TIMEOUT_S} docker pull {image} || return 1",
        "    fi",
        f'    export NODE_RANK="{node_rank}"',
        *(f"    {line}" for line in secret_file_lines(list(secrets))),
        "    " + " \\\n        ".join(run),
        "}",
        f"export -f {NODE_FUNCTION}",
        "",
    ]
    return Step(setup, [], [words(["bash", "-c", NODE_FUNCTION])])


def runtime_step(runtime: str, spec: RunSpec, facts: ImageFacts, image: str, gpus_per_node: int,
                 passed_env: list[list[str]], network: str, node_rank: str, secrets: list[str] = ()) -> Step:
    """The step for `runtime`; `image` is what the nodes run (see node_image); `passed_env` lists groups of
    variable names the step passes on from its environment (pyxis and apptainer pass every one anyway);
    `secrets` names secrets in the step's environment: docker mounts them as files (secret_file_lines),
    pyxis and apptainer tasks keep them in their environment, which no container configuration records."""
    check_mount_paths(spec)
    if runtime == "pyxis":
        return pyxis_step(spec, facts, image, gpus_per_node, node_rank)
    if runtime == "apptainer":
        return apptainer_step(spec, facts, image, gpus_per_node, node_rank)
    if runtime == "docker":
        return docker_step(spec, passed_env, network, gpus_per_node, node_rank, secrets)
    raise FtimgError(f"--runtime {runtime}: unknown runtime; choose one of {', '.join(RUNTIMES)}")
