"""`ftimg push` against real local registries (Debian's docker-registry): tags, digest, pull back,
unreachable registry, missing and bad credentials, and the full train image once (slow)."""

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import time

import bcrypt
import pytest
import requests
from tracked import ftimg

from ftimg import engine

pytestmark = pytest.mark.docker

REGISTRY_BINARY = "docker-registry"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
USER, PASSWORD = "ftimg", "pw-" + secrets.token_hex(8)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_registry(directory, auth: bool):
    """`docker-registry serve CONFIG` on 127.0.0.1:<free port> with a temp storage dir; (process, host:port)."""
    if shutil.which(REGISTRY_BINARY) is None:
        pytest.fail("docker-registry is not installed: `apt-get install docker-registry` (make setup does)")
    port = free_port()
    config = {"version": 0.1, "log": {"level": "warn"},
              "storage": {"filesystem": {"rootdirectory": str(directory / "storage")}, "delete": {"enabled": True}},
              "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)}}
    if auth:
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt()).decode()  # the registry reads bcrypt only
        (directory / "htpasswd").write_text(f"{USER}:{hashed}\n")
        config["auth"] = {"htpasswd": {"realm": "ftimg-test", "path": str(directory / "htpasswd")}}
    (directory / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    log = open(directory / "registry.log", "w")
    process = subprocess.Popen([REGISTRY_BINARY, "serve", str(directory / "config.yml")], stdout=log,
                               stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"http://{address}/v2/", timeout=2).status_code in (200, 401):
                return process, address
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"docker-registry did not start: {(directory / 'registry.log').read_text()[-2000:]}")
        time.sleep(0.2)


def stop_registry(process):
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    process, address = start_registry(tmp_path_factory.mktemp("registry"), auth=False)
    yield address
    stop_registry(process)


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory):
    process, address = start_registry(tmp_path_factory.mktemp("auth-registry"), auth=True)
    yield address
    stop_registry(process)


@pytest.fixture
def small_image(client, tmp_path, scratch_images):
    """A small image derived from the base by the engine, labelled like a train image, with a layer of its own."""
    tag = f"ftimg-test/small:{secrets.token_hex(4)}"
    (tmp_path / "Dockerfile").write_text(
        "FROM ftimg/base:bookworm-py3.11\n"
        f"RUN echo {secrets.token_hex(16)} > /unique && head -c 3000000 /dev/urandom > /payload\n"
        "LABEL org.ftimg.profile=test-small org.ftimg.lock-hash=" + secrets.token_hex(32) + "\n")
    scratch_images.append(tag)
    engine.build_image(client, tmp_path, "Dockerfile", tag, {})
    return tag


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    """A DOCKER_CONFIG directory of the test's own (so the user's logins are neither used nor touched)."""
    directory = tmp_path / "docker-config"
    directory.mkdir()

    def write(auths):
        (directory / "config.json").write_text(json.dumps({"auths": auths}))
        return {"DOCKER_CONFIG": str(directory)}
    return write


def login_entry(address, user, password):
    return {address: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}}


def pushed_refs(stdout):
    return dict(line.split("@", 1) for line in stdout.split() if "@sha256:" in line)


def test_push_tags_by_profile_and_lock_hash_and_pulls_back_by_digest(client, registry, small_image,
                                                                     scratch_images, docker_config):
    labels = client.api.inspect_image(small_image)["Config"]["Labels"]
    repository = f"{registry}/team/small"
    env = docker_config({})
    code, out, err = ftimg("push", small_image, f"{repository}:exp1", env=env)
    refs = pushed_refs(out)
    scratch_images.extend(refs)
    assert code == 0, err
    hash12 = labels["org.ftimg.lock-hash"][:12]
    assert list(refs) == [f"{repository}:test-small", f"{repository}:test-small-{hash12}", f"{repository}:exp1"]
    digests = set(refs.values())
    assert len(digests) == 1
    digest = digests.pop()
    assert "pushing" in err and "pushed 3 tag(s)" in err

    tags = requests.get(f"http://{registry}/v2/team/small/tags/list", timeout=10).json()["tags"]
    assert sorted(tags) == sorted(["test-small", f"test-small-{hash12}", "exp1"])
    head = requests.head(f"http://{registry}/v2/team/small/manifests/exp1", headers={"Accept": MANIFEST_V2},
                         timeout=10)
    assert head.headers["Docker-Content-Digest"] == digest

    image_id = client.images.get(small_image).id
    for ref in [small_image, *refs]:
        engine.remove_image(client, ref)
    assert not engine.image_exists(client, image_id)
    pulled_id = engine.pull_image(client, f"{repository}:exp1")
    pulled = client.api.inspect_image(pulled_id)
    assert pulled_id == image_id
    assert f"{repository}@{digest}" in pulled["RepoDigests"]
    assert pulled["Config"]["Labels"] == labels


def test_unreachable_registry_is_a_clear_error_and_leaves_no_tag(client, small_image, docker_config):
    address = f"127.0.0.1:{free_port()}"
    code, out, err = ftimg("push", small_image, f"{address}/team/small", env=docker_config({}))
    assert code == 1
    assert f"pushing {address}/team/small:test-small failed" in err
    assert f"Is the registry {address} running and reachable" in err
    assert not engine.image_exists(client, f"{address}/team/small:test-small")
    assert engine.image_exists(client, small_image)


def test_missing_or_bad_credentials_say_docker_login_and_good_ones_push(auth_registry, small_image,
                                                                        scratch_images, docker_config):
    destination = f"{auth_registry}/team/small"
    scratch_images.extend([f"{destination}:test-small"])
    for auths in ({}, login_entry(auth_registry, USER, "wrong-password")):
        code, out, err = ftimg("push", small_image, destination, env=docker_config(auths))
        assert code == 1
        assert "unauthorized" in err.lower() or "no basic auth" in err.lower()
        assert f"docker login {auth_registry}" in err
    code, out, err = ftimg("push", small_image, destination, env=docker_config(login_entry(auth_registry, USER,
                                                                                        PASSWORD)))
    scratch_images.extend(pushed_refs(out))
    assert code == 0, err
    assert PASSWORD not in out + err
    assert base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode() not in out + err


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("FTIMG_TEST_FULL_PUSH") != "1",
                    reason="pushing the ~7 GB train image takes over 15 min on a small host; FTIMG_TEST_FULL_PUSH=1 runs it")
def test_full_train_image_push_pull_verify(client, registry, train_image, scratch_images, docker_config,
                                           project_root):
    """The ~7 GB train image once: push, pull back, `ftimg verify` the pulled ref (prints the times)."""
    repository = f"{registry}/team/train"
    started = time.monotonic()
    code, out, err = ftimg("push", train_image, repository, env=docker_config({}), timeout=3600)
    pushed = time.monotonic() - started
    refs = pushed_refs(out)
    scratch_images.extend(refs)
    assert code == 0, err[-3000:]
    ref, digest = next(iter(refs.items()))
    engine.remove_image(client, ref)  # the tag only: the train image itself stays for the other tests
    started = time.monotonic()
    pulled_id = engine.pull_image(client, ref)
    pulled = time.monotonic() - started
    assert pulled_id == client.images.get(train_image).id
    assert f"{repository}@{digest}" in client.api.inspect_image(ref)["RepoDigests"]
    code, out, err = ftimg("verify", ref, cwd=project_root, timeout=900)
    assert code == 0, out + err
    assert "matches images.lock" in out
    print(f"\nfull image {train_image}: push {pushed:.0f}s, pull {pulled:.0f}s, digest {digest}")
