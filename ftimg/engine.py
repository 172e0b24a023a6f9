"""The one module that talks to the Docker engine.

Every docker.errors.* becomes an ftimg EngineError/BuildError that names the
operation, the image and, for builds, the tail of the log.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import Callable, Iterable

import requests

import docker
import docker.errors
import docker.types
from ftimg.errors import BuildError, EngineError

OnLine = Callable[[str], None]
LOG_TAIL_LINES = 40


def connect() -> docker.DockerClient:
    """A client for the engine named by DOCKER_HOST (default: the local socket), known to answer."""
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise EngineError(
            f"cannot reach the Docker engine at {where}: {exc}. Start it (e.g. `sudo systemctl "
            "start docker`), check that your user may use it (`docker info`), or set DOCKER_HOST."
        ) from exc
    return client


def engine_version(client: docker.DockerClient) -> dict:
    return client.version()


def engine_info(client: docker.DockerClient) -> dict:
    return client.info()


def image_exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.APIError as exc:
        raise EngineError(f"inspecting image {ref} failed: {exc.explanation}") from exc


def inspect_image(client: docker.DockerClient, ref: str) -> dict:
    try:
        return client.api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        raise EngineError(f"image {ref} is not in the engine; build it with `ftimg build` "
                          "or list what is there with `ftimg images`") from None
    except docker.errors.APIError as exc:
        raise EngineError(f"inspecting image {ref} failed: {exc.explanation}") from exc


def list_images(client: docker.DockerClient, label: str) -> list[dict]:
    """Images carrying `label` (raw engine records: Id, RepoTags, Labels, Size, Created)."""
    try:
        return client.api.images(filters={"label": label})
    except docker.errors.APIError as exc:
        raise EngineError(f"listing images failed: {exc.explanation}") from exc


def split_ref(ref: str) -> tuple[str, str]:
    """REPOSITORY and TAG of an image reference; `latest` when it names none (a port is not a tag)."""
    repository, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "latest")
    return repository, tag


def tag_image(client: docker.DockerClient, image_id: str, ref: str) -> None:
    repository, tag = split_ref(ref)
    try:
        client.api.tag(image_id, repository, tag)
    except docker.errors.APIError as exc:
        raise EngineError(f"tagging {image_id[:19]} as {ref} failed: {exc.explanation}") from exc


def remove_image(client: docker.DockerClient, ref: str, *, untag_only: bool = False) -> None:
    """Remove the image `ref` names (gone already is fine).

    ``untag_only`` removes just the tag: the image itself is deleted only when that was its last tag.
    """
    try:
        if untag_only:
            client.api.remove_image(ref, noprune=True)
        else:
            client.api.remove_image(ref, force=True)
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as exc:
        raise EngineError(f"{'untagging' if untag_only else 'removing image'} {ref} failed: {exc.explanation}") from exc


def remove_dangling_images(client: docker.DockerClient, label: str) -> int:
    """Remove untagged leaf images carrying `label` (and their untagged parents); how many leaves went."""
    try:
        leaves = client.api.images(filters={"dangling": True, "label": label}, quiet=True)
        for image_id in leaves:
            client.api.remove_image(image_id)
    except docker.errors.APIError as exc:
        raise EngineError(f"removing build leftovers ({label}) failed: {exc.explanation}") from exc
    return len(leaves)


def build_image(client: docker.DockerClient, context: Path | Iterable[bytes], dockerfile: str, tag: str,
                buildargs: dict[str, str], nocache: bool = False, on_line: OnLine = lambda _: None) -> str:
    """Build with the classic builder, streaming each log line; returns the image id.

    `context` is a directory (docker-py tars it, honouring .dockerignore) or a tar
    stream (see tarstream.py). The engine tags the image only when every step
    succeeded, so a failed build leaves no half-built image under `tag`.
    """
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    image_id = ""
    try:
        where = ({"path": str(context)} if isinstance(context, Path)
                 else {"fileobj": context, "custom_context": True})
        stream = client.api.build(**where, dockerfile=dockerfile, tag=tag, buildargs=buildargs,
                                  nocache=nocache, rm=True, forcerm=True, pull=False, decode=True)
        for event in stream:
            if "error" in event:
                tail.append(event["error"])
                raise BuildError(f"building {tag} failed: {event['error'].strip()}", "\n".join(tail))
            text = event.get("stream") or event.get("status") or ""
            for line in text.splitlines():
                if line.strip():
                    tail.append(line)
                    on_line(line)
            image_id = event.get("aux", {}).get("ID", image_id)
    except docker.errors.APIError as exc:
        raise BuildError(f"building {tag} failed: {exc.explanation}", "\n".join(tail)) from exc
    except requests.RequestException as exc:
        raise BuildError(f"building {tag}: lost the connection to the engine: {exc}",
                         "\n".join(tail)) from exc
    except OSError as exc:  # the context could not be read while it was being sent
        raise BuildError(f"building {tag}: {exc}", "\n".join(tail)) from exc
    if not image_id:
        raise BuildError(f"building {tag}: the engine reported no image id", "\n".join(tail))
    return image_id


def import_rootfs(client: docker.DockerClient, tarball: Path, ref: str, changes: list[str]) -> str:
    """`docker import` a root filesystem tarball as `ref`; returns the image id."""
    repository, _, tag = ref.rpartition(":")
    try:
        client.api.import_image_from_file(str(tarball), repository=repository, tag=tag, changes=changes)
        return client.images.get(ref).id
    except docker.errors.APIError as exc:
        raise EngineError(f"importing {tarball} as {ref} failed: {exc.explanation}") from exc


def run_capture(client: docker.DockerClient, image: str, command: list[str], user: str = "root",
                entrypoint: list[str] | None = None, environment: dict | None = None) -> tuple[int, str, str]:
    """Run a short command in a throwaway container; (exit code, stdout, stderr)."""
    container = None
    try:
        container = client.containers.create(image, command=command, user=user,
                                             entrypoint=entrypoint, environment=environment,
                                             network_disabled=True)
        container.start()
        status = container.wait()
        stdout = container.logs(stdout=True, stderr=False).decode(errors="replace")
        stderr = container.logs(stdout=False, stderr=True).decode(errors="replace")
        return status.get("StatusCode", 1), stdout, stderr
    except docker.errors.ImageNotFound:
        raise EngineError(f"image {image} is not in the engine; build it with `ftimg build`") from None
    except docker.errors.APIError as exc:
        raise EngineError(f"running {' '.join(command)} in {image} failed: {exc.explanation}") from exc
    finally:
        if container is not None:
            container.remove(force=True)


# --- job containers (`ftimg run`, `ps`, `logs`, `stop`) ---------------------------------------

def no_such_container(name: str) -> EngineError:
    return EngineError(f"no container named {name}; list job containers with `ftimg ps`")


def create_job_container(client: docker.DockerClient, spec) -> str:
    """Create (not start) the container a RunSpec describes; returns its id."""
    mounts = [docker.types.Mount(target=m.target, source=m.source, type="bind", read_only=m.read_only)
              for m in spec.mounts]
    device_requests = None
    if spec.gpus is not None:
        device_requests = [docker.types.DeviceRequest(count=spec.gpus.count,
                                                      device_ids=list(spec.gpus.device_ids) or None,
                                                      capabilities=[["gpu"]])]
    ulimits = [docker.types.Ulimit(name=name, soft=soft, hard=hard) for name, (soft, hard) in spec.ulimits.items()]
    host_config = client.api.create_host_config(
        mounts=mounts, device_requests=device_requests, ipc_mode=spec.ipc_mode, shm_size=spec.shm_size,
        ulimits=ulimits, init=spec.init, network_mode=spec.network)
    try:
        created = client.api.create_container(
            spec.image, command=spec.command, name=spec.name, user=spec.user, environment=spec.environment,
            labels=spec.labels, host_config=host_config, stop_timeout=spec.stop_timeout)
    except docker.errors.ImageNotFound:
        raise EngineError(f"image {spec.image} is not in the engine; build it with `ftimg build`") from None
    except docker.errors.APIError as exc:
        raise EngineError(f"creating container {spec.name} failed: {exc.explanation}") from exc
    return created["Id"]


def start_container(client: docker.DockerClient, name: str) -> None:
    try:
        client.api.start(name)
    except docker.errors.APIError as exc:
        raise EngineError(f"starting container {name} failed: {exc.explanation}") from exc


def remove_container(client: docker.DockerClient, name: str) -> None:
    try:
        client.api.remove_container(name, force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if "already in progress" not in str(exc.explanation):  # the engine is removing it already
            raise EngineError(f"removing container {name} failed: {exc.explanation}") from exc


def container_output(client: docker.DockerClient, name: str, follow: bool = True):
    """The container's stdout and stderr as byte chunks, live while it runs when `follow`.

    A separate connection with no read timeout: a job may print nothing for longer
    than the client's timeout (a long step, a checkpoint save) and is still alive.
    """
    streaming = docker.from_env(timeout=None)
    try:
        yield from streaming.api.logs(name, stdout=True, stderr=True, stream=True, follow=follow)
    except docker.errors.NotFound:
        raise no_such_container(name) from None
    except docker.errors.APIError as exc:
        raise EngineError(f"reading the output of {name} failed: {exc.explanation}") from exc
    finally:
        streaming.close()


def stop_container(client: docker.DockerClient, name: str, timeout: int) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds (the engine's own stop)."""
    try:
        client.api.stop(name, timeout=timeout)
    except docker.errors.NotFound:
        raise no_such_container(name) from None
    except docker.errors.APIError as exc:
        raise EngineError(f"stopping {name} failed: {exc.explanation}") from exc


def wait_container(client: docker.DockerClient, name: str) -> int:
    """Block until the container exits (however long that takes); its exit code."""
    try:
        return int(client.api.wait(name, timeout=None)["StatusCode"])
    except docker.errors.NotFound:
        raise no_such_container(name) from None
    except docker.errors.APIError as exc:
        raise EngineError(f"waiting for {name} failed: {exc.explanation}") from exc


def list_containers(client: docker.DockerClient, label: str) -> list[dict]:
    """Containers carrying `label`, running or not (raw records: Names, Labels, Image, State, Status, Created)."""
    try:
        return client.api.containers(all=True, filters={"label": label})
    except docker.errors.APIError as exc:
        raise EngineError(f"listing containers failed: {exc.explanation}") from exc


# --- registry ----------------------------------------------------------------------------------

def push_events(client: docker.DockerClient, repository: str, tag: str):
    """Push REPOSITORY:TAG with the credentials in the user's Docker config; the engine's progress events.

    The engine reports a failed push as an event, not an HTTP error: it becomes an
    EngineError naming the ref and the registry's message.
    """
    ref = f"{repository}:{tag}"
    try:
        for event in client.api.push(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise EngineError(f"pushing {ref} failed: {event['error'].strip()}")
            yield event
    except docker.errors.APIError as exc:
        raise EngineError(f"pushing {ref} failed: {exc.explanation}") from exc
    except requests.RequestException as exc:
        raise EngineError(f"pushing {ref} failed: lost the connection to the engine: {exc}") from exc


def pull_image(client: docker.DockerClient, ref: str) -> str:
    """Pull `ref` with the user's Docker credentials; the local image id."""
    repository, tag = split_ref(ref)
    try:
        for event in client.api.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise EngineError(f"pulling {ref} failed: {event['error'].strip()}")
        return client.images.get(ref).id
    except docker.errors.APIError as exc:
        raise EngineError(f"pulling {ref} failed: {exc.explanation}") from exc
