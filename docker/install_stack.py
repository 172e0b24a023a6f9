"""Runs in the builder stage: installs the locked stack into /opt/venv, offline.

Input: /stack/stack.json (the profile's artifacts from images.lock), the verified
wheelhouse in /stack/wheelhouse and sdist patches in /stack/patches. Wheels are
installed with pip's --require-hashes; sdists are sha256-checked, patched and built
here (never in the final image) with the stack already installed (deepspeed's
setup.py imports torch). Standard library only: the base image has no pip.
"""

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

STACK = Path("/stack")
WHEELHOUSE = STACK / "wheelhouse"
VENV = Path("/opt/venv")
PIP_FLAGS = ["install", "--no-index", "--find-links", str(WHEELHOUSE), "--no-deps",
             "--no-cache-dir", "--disable-pip-version-check", "--no-warn-script-location"]


def run(cmd, **env):
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, **env})


def hashed_requirements(artifacts, path):
    path.write_text("".join(f"{a['name']}=={a['version']} --hash=sha256:{a['sha256']}\n" for a in artifacts))
    return str(path)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def apply_patches(source_dir, dist_dir):
    for patch_file in sorted(dist_dir.glob("*.json")) if dist_dir.is_dir() else []:
        patch = json.loads(patch_file.read_text())
        target = source_dir / patch["file"]
        text = target.read_text()
        for old, new in patch["replace"]:
            if old not in text:
                sys.exit(f"patch {patch_file.name}: expected text not found in {patch['file']}: {old!r}")
            text = text.replace(old, new)
        target.write_text(text)
        print(f"patched {patch['file']} ({patch_file.name})", flush=True)


def build_sdist(artifact):
    archive = WHEELHOUSE / artifact["filename"]
    if sha256_of(archive) != artifact["sha256"]:
        sys.exit(f"{archive.name}: sha256 does not match images.lock")
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 refuses unsafe members
            tar.extractall("/tmp/src", filter="data")
        else:
            tar.extractall("/tmp/src")
    source_dir = Path("/tmp/src") / archive.name.removesuffix(".tar.gz")
    apply_patches(source_dir, STACK / "patches" / f"{artifact['name']}-{artifact['version']}")
    # DS_BUILD_OPS=0: deepspeed's CUDA ops need nvcc, which no image carries; pure-Python install.
    run([str(VENV / "bin/python"), "-m", "pip", *PIP_FLAGS, "--no-build-isolation", str(source_dir)],
        DS_BUILD_OPS="0")


def main():
    stack = json.loads((STACK / "stack.json").read_text())
    artifacts = stack["artifacts"]
    build = [a for a in artifacts if a["role"] == "build"]
    wheels = [a for a in artifacts if a["role"] == "runtime" and a["kind"] == "wheel"]
    sdists = [a for a in artifacts if a["kind"] == "sdist"]
    pip_wheel = next(WHEELHOUSE.glob("pip-*.whl"))
    run([sys.executable, "-m", "venv", "--without-pip", str(VENV)])
    python = str(VENV / "bin/python")
    # pip runs from its own wheel to install itself, setuptools and wheel into the venv.
    run([python, f"{pip_wheel}/pip", *PIP_FLAGS, "--require-hashes", "-r",
         hashed_requirements(build, Path("/tmp/build.txt"))])
    run([python, "-m", "pip", *PIP_FLAGS, "--require-hashes", "-r",
         hashed_requirements(wheels, Path("/tmp/runtime.txt"))])
    for artifact in sdists:
        build_sdist(artifact)
    for filename, sha256 in stack.get("optional", {}).items():
        if sha256_of(WHEELHOUSE / filename) != sha256:
            sys.exit(f"{filename}: sha256 does not match images.lock")
        run([python, "-m", "pip", *PIP_FLAGS, str(WHEELHOUSE / filename)])
    run([python, "-m", "pip", "check"])


if __name__ == "__main__":
    main()
