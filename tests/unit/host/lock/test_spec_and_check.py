"""Profile specs: validation, and `ftimg lock --check` naming each difference."""

import pytest

from ftimg.errors import LockError
from ftimg.lock.lockfile import Artifact, Lock, LockedProfile
from ftimg.lock.resolve import check_lock
from ftimg.lock.spec import load_specs, parse_spec

GOOD = """
python = "3.11"
platform = "x86_64-manylinux_2_36"
requirements = ["six==1.16.0"]
[base]
image = "ftimg/base:x"
"""


def test_spec_errors_are_collected_and_reported_together():
    text = GOOD.replace('python = "3.11"', 'pyhton = "3.11"').replace('"six==1.16.0"', '"six=="')
    with pytest.raises(LockError) as info:
        parse_spec("p", text, "docker/profiles/p.toml")
    message = str(info.value)
    assert "docker/profiles/p.toml is not a well-formed profile spec" in message
    assert "unknown keys ['pyhton']" in message
    assert "missing key 'python'" in message
    assert "'six==' is not a valid PEP 508 requirement" in message


def _lock_from(spec):
    artifact = Artifact("six", "1.16.0", "wheel", "runtime", "six.whl", "https://x/six.whl", "a" * 64)
    return Lock("p", {"p": LockedProfile("p", spec.as_table(), (artifact,))})


def test_check_passes_when_in_sync_and_names_each_difference():
    spec = parse_spec("p", GOOD, "p.toml")
    lock = _lock_from(spec)
    assert check_lock({"p": spec}, lock) == []
    edited = parse_spec("p", GOOD.replace("six==1.16.0", "six==1.17.0"), "p.toml")
    differences = check_lock({"p": edited}, lock)
    assert "p.requirements: 'six==1.17.0' is in the spec but not in images.lock" in differences
    assert "p.requirements: 'six==1.16.0' is in images.lock but not in the spec" in differences
    assert check_lock({"p": spec, "q": spec}, lock) == [
        "profile 'q' has a spec (docker/profiles/q.toml) but is not in images.lock"]


def test_repo_specs_match_the_committed_lock(project_root):
    from ftimg.lock import lockfile
    specs = load_specs(project_root / "docker" / "profiles")
    assert set(specs) == {"cu121-torch2.1", "cu130-torch2.11"}
    assert check_lock(specs, lockfile.load(project_root / "images.lock")) == []
