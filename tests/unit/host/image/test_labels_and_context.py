"""Tags, labels and build arguments, and the stack build context's content."""

import json

from ftimg.image import labels
from ftimg.image.context import write_stack_context
from ftimg.image.dockerfile import render
from ftimg.lock.lockfile import Artifact, LockedProfile

SPEC = {"python": "3.11", "base": {"image": "ftimg/base:bookworm-py3.11"}, "description": "test",
        "optional": {"flash-attn": {"filename": "fa.whl", "url": "https://x/fa.whl", "sha256": ""}}}
TORCH = Artifact("torch", "2.1.2", "wheel", "runtime", "torch-2.1.2.whl", "https://x/t.whl", "a" * 64)
DS = Artifact("deepspeed", "0.15.3", "sdist", "runtime", "deepspeed-0.15.3.tar.gz", "https://x/d", "b" * 64)
PROFILE = LockedProfile("cu121-torch2.1", SPEC, (TORCH, DS))


def test_tags_carry_profile_and_lock_hash():
    short = PROFILE.lock_hash()[:12]
    assert labels.train_tags(PROFILE) == ["ftimg/train:cu121-torch2.1", f"ftimg/train:cu121-torch2.1-{short}"]
    stack = labels.stack_tag(PROFILE, "recipe-1")
    assert stack.startswith("ftimg/stack:cu121-torch2.1-") and len(stack.rsplit("-", 1)[1]) == 12
    assert labels.stack_tag(PROFILE, "recipe-2") != stack, "a recipe change must not reuse the stack"


def test_build_args_name_base_profile_and_stack():
    assert labels.stack_buildargs(PROFILE) == {"BASE_IMAGE": "ftimg/base:bookworm-py3.11",
                                               "FTIMG_PROFILE": "cu121-torch2.1",
                                               "FTIMG_LOCK_HASH": PROFILE.lock_hash()}
    assert labels.train_buildargs("ftimg/stack:x") == {"STACK_IMAGE": "ftimg/stack:x"}


def test_labels_render_as_one_instruction_with_escaped_values():
    text = render("FROM x\nRUN true\n", {"b": 'say "hi"', "a": "1"})
    assert text == 'FROM x\nRUN true\nLABEL "a"="1" \\\n      "b"="say \\"hi\\""\n'



def test_labels_describe_the_image():
    jobs = [{"name": "lora-sft"}]
    result = labels.image_labels(PROFILE, "abc123", {"flash-attn": "absent"}, jobs)
    assert result["org.ftimg.profile"] == "cu121-torch2.1"
    assert result["org.ftimg.lock-hash"] == PROFILE.lock_hash()
    assert result["org.opencontainers.image.revision"] == "abc123"
    assert json.loads(result["org.ftimg.versions"]) == {"torch": "2.1.2", "deepspeed": "0.15.3"}
    assert json.loads(result["org.ftimg.jobs"]) == jobs
    assert "org.ftimg.jobs" not in labels.image_labels(PROFILE, "abc123", {})


def test_stack_context_holds_exactly_the_profile_files(tmp_path, project_root):
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    for name in ("torch-2.1.2.whl", "deepspeed-0.15.3.tar.gz", "unrelated-1.0.whl"):
        (wheelhouse / name).write_bytes(b"x")
    context = write_stack_context(PROFILE, wheelhouse, project_root / "docker", tmp_path / "ctx", {},
                                  {"org.ftimg.profile": "cu121-torch2.1"})
    assert sorted(p.name for p in (context / "wheelhouse").iterdir()) == ["deepspeed-0.15.3.tar.gz",
                                                                        "torch-2.1.2.whl"]
    stack = json.loads((context / "stack.json").read_text())
    assert [a["name"] for a in stack["artifacts"]] == ["torch", "deepspeed"]
    assert (context / "stack.Dockerfile").read_text().endswith('LABEL "org.ftimg.profile"="cu121-torch2.1"\n')
    assert (context / "install_stack.py").exists()
    assert (context / "patches" / "deepspeed-0.15.3").is_dir()
