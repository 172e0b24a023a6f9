"""The default profile's image: imports at the locked versions, verify, hygiene, labels."""

import json
import shutil
import subprocess
import sys

import pytest

from ftimg import engine
from ftimg.image.build import current_stack, needs_stack_build
from ftimg.image.verify import verify_image
from ftimg.paths import ProjectPaths

pytestmark = pytest.mark.docker

KEY_IMPORTS = {"torch": "torch", "deepspeed": "deepspeed", "bitsandbytes": "bitsandbytes", "peft": "peft",
               "transformers": "transformers", "accelerate": "accelerate", "xformers": "xformers"}


def _python(client, image, code):
    status, out, err = engine.run_capture(client, image, ["-c", code], entrypoint=["python"],
                                          user="1000:1000")
    assert status == 0, err[-3000:]
    return out


def test_every_pinned_package_imports_at_the_locked_version(client, train_image, profile):
    code = ("import importlib, json; mods = %r; print(json.dumps({d: importlib.import_module(m).__version__ "
            "for d, m in mods.items()}))" % KEY_IMPORTS)
    versions = json.loads(_python(client, train_image, code).strip().splitlines()[-1])
    for dist, version in versions.items():
        locked = profile.artifact(dist).version
        assert version.split("+")[0] == locked, f"{dist}: imports {version}, locked {locked}"


def test_deepspeed_0_15_3_logs_on_torch_2_1(client, train_image):
    # Seed 001: `AttributeError: module 'torch.compiler' has no attribute 'is_compiling'` on
    # the first log record. Both code paths that called it must now work.
    code = ("import os; os.environ['DISABLE_LOGS_WHILE_COMPILING'] = '1'\n"
            "import torch, deepspeed\nfrom deepspeed.utils import logger\nfrom deepspeed.utils.logging import LoggerFactory\n"
            "assert not hasattr(torch.compiler, 'is_compiling')\n"
            "logger.warning('ds-log-ok')\n"
            "print(LoggerFactory.logging_decorator(lambda: 'decorated-ok')())")
    assert "decorated-ok" in _python(client, train_image, code)


def test_verify_passes_on_the_built_image(client, train_image, lock, profile):
    report = verify_image(client, train_image, lock)
    assert report.ok, report.differences
    assert report.checked >= len(profile.artifacts)


def test_verify_fails_and_shows_the_diff_when_one_package_changed(client, train_image, lock, profile,
                                                                   scratch_images, tmp_path, project_root):
    locked = profile.artifact("tqdm").version
    older = "4.66.1" if locked != "4.66.1" else "4.66.0"
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", f"tqdm=={older}",
                    "-d", str(tmp_path)], check=True)
    (tmp_path / "Dockerfile").write_text(
        f"FROM {train_image}\nUSER root\nCOPY tqdm-{older}-py3-none-any.whl /tmp/\n"
        f"RUN pip install --no-deps --no-index /tmp/tqdm-{older}-py3-none-any.whl && rm /tmp/*.whl\n")
    tag = "ftimg-test/drifted:tqdm"
    scratch_images.append(tag)
    engine.build_image(client, tmp_path, "Dockerfile", tag, {})
    report = verify_image(client, tag, lock)
    assert not report.ok
    assert report.differences == [f"~ tqdm: pinned {locked}, installed {older}"]
    cli = subprocess.run([str(project_root / ".venv/bin/ftimg"), "verify", tag], capture_output=True, text=True,
                         cwd=project_root)
    assert cli.returncode == 1
    assert f"~ tqdm: pinned {locked}, installed {older}" in cli.stdout


def test_image_runs_as_non_root_and_has_no_build_leftovers(client, train_image):
    code = ("import os, glob, shutil, json; print(json.dumps({'uid': os.getuid(), "
            "'wheels': [w for d in ('/opt', '/usr', '/home', '/root', '/tmp', '/work') "
            "for w in glob.glob(d + '/**/*.whl', recursive=True)], "
            "'pip_cache': [p for p in ('/root/.cache/pip', '/home/ftimg/.cache/pip') if os.path.exists(p)], "
            "'stack': os.path.exists('/stack') or os.path.exists('/tmp/src'), "
            "'home': os.listdir('/home/ftimg'), "
            "'compilers': [c for c in ('gcc', 'cc', 'g++', 'nvcc', 'make') if shutil.which(c)]}))")
    # user="": the image's own default user, as `docker run IMAGE` gets it.
    status, out, err = engine.run_capture(client, train_image, ["-c", code], entrypoint=["python"], user="")
    assert status == 0, err
    facts = json.loads(out)
    assert facts == {"uid": 1000, "wheels": [], "pip_cache": [], "stack": False, "home": [], "compilers": []}


def test_labels_describe_profile_lock_and_versions(client, train_image, profile):
    labels = engine.inspect_image(client, train_image)["Config"]["Labels"]
    assert labels["org.ftimg.profile"] == profile.name
    assert labels["org.ftimg.lock-hash"] == profile.lock_hash()
    versions = json.loads(labels["org.ftimg.versions"])
    assert versions["torch"] == "2.1.2" and versions["deepspeed"] == "0.15.3"
    assert len(labels["org.opencontainers.image.revision"]) >= 40
    assert json.loads(labels["org.ftimg.optional"])["flash-attn"].startswith(("installed", "absent"))
    assert {"qlora-sft", "lora-sft", "full-sft", "infer"} <= {j["name"] for j in json.loads(labels["org.ftimg.jobs"])}


def test_failed_build_tags_nothing_and_reports_the_log_tail(client, scratch_images, tmp_path, profile):
    from ftimg.errors import BuildError

    (tmp_path / "Dockerfile").write_text(f"FROM {profile.base_image}\nRUN echo about-to-fail && false\n")
    tag = "ftimg-test/broken:latest"
    scratch_images.append(tag)
    with pytest.raises(BuildError) as info:
        engine.build_image(client, tmp_path, "Dockerfile", tag, {})
    assert "about-to-fail" in str(info.value)
    assert not engine.image_exists(client, tag)


def test_stack_is_rebuilt_only_when_the_lock_or_its_recipe_changes(client, profile, stack_image, project_root,
                                                                   tmp_path):
    """`ftimg build` skips the base and the 3 GB wheelhouse when the stack image is current."""
    paths = ProjectPaths(project_root)
    assert current_stack(paths, profile) == stack_image
    assert not needs_stack_build(client, paths, profile, nocache=False)
    assert needs_stack_build(client, paths, profile, nocache=True)
    edited = tmp_path / "project"
    shutil.copytree(project_root / "docker", edited / "docker")
    installer = edited / "docker" / "install_stack.py"
    installer.write_text(installer.read_text() + "\n# an edit to the recipe\n")
    assert needs_stack_build(client, ProjectPaths(edited), profile, nocache=False)


def test_stack_inputs_are_fetched_into_an_empty_wheelhouse(client, profile, tmp_path, monkeypatch, project_root):
    """A stack build brings its own wheelhouse: the engine may hold a base from an earlier run, the disk nothing."""
    from dataclasses import replace

    from ftimg.errors import FetchError
    from ftimg.image.build import prepare_stack_inputs

    small = replace(profile, artifacts=tuple(a for a in profile.artifacts if a.name in {"pip", "wheel"}))
    assert len(small.artifacts) == 2
    monkeypatch.setenv("FTIMG_WHEELHOUSE", str(tmp_path / "wheelhouse"))
    paths = ProjectPaths(project_root)
    with pytest.raises(FetchError, match="missing from the wheelhouse"):
        prepare_stack_inputs(client, paths, small, fetch=False, on_progress=lambda _: None)

    said = []
    prepare_stack_inputs(client, paths, small, fetch=True, on_progress=said.append)

    assert sorted(p.name for p in (tmp_path / "wheelhouse").iterdir()) == sorted(a.filename for a in small.artifacts)
    assert sum(line.startswith("fetched ") for line in said) == 2
    prepare_stack_inputs(client, paths, small, fetch=False, on_progress=lambda _: None)  # now verified as it is
