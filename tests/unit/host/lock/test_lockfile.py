"""images.lock parsing, validation errors (with line numbers), hashing and round trips."""

import pytest

from ftimg.errors import LockError
from ftimg.lock import lockfile
from ftimg.lock.lockfile import Artifact, Lock, LockedProfile

SPEC = {"python": "3.11", "platform": "x86_64-manylinux_2_36", "exclude_newer": "", "requirements": ["six"],
        "build_requirements": ["pip"], "base": {"image": "ftimg/base:x", "suite": "bookworm",
                                                "mirror": "http://deb.debian.org/debian", "packages": ["python3"]},
        "optional": {}}


def _artifact(name="six", version="1.16.0", sha="a" * 64):
    return Artifact(name, version, "wheel", "runtime", f"{name}-{version}-py2.py3-none-any.whl",
                    f"https://files.example/{name}.whl", sha)


def _lock(*artifacts):
    return Lock("p1", {"p1": LockedProfile("p1", SPEC, tuple(artifacts or (_artifact(),)))})


def test_round_trip_preserves_profiles_and_hash():
    original = _lock(_artifact(), _artifact("pip", "24.3.1", "b" * 64))
    parsed = lockfile.loads(lockfile.dumps(original))
    assert parsed.default_profile == "p1"
    assert parsed.profile("p1").artifacts == tuple(sorted(original.profile("p1").artifacts,
                                                          key=lambda a: (a.role, a.name)))
    assert parsed.profile("p1").lock_hash() != ""


def test_lock_hash_changes_when_one_pin_changes():
    assert _lock(_artifact()).profile("p1").lock_hash() != _lock(_artifact(version="1.17.0")).profile("p1").lock_hash()


def test_unknown_profile_lists_known_ones():
    with pytest.raises(LockError, match="unknown profile 'nope'.*p1"):
        _lock().profile("nope")


def test_corrupt_toml_names_the_line():
    text = lockfile.dumps(_lock()).replace('name = "six"', 'name = "six', 1)
    with pytest.raises(LockError, match=r"images.lock: corrupt TOML: .*line \d+"):
        lockfile.loads(text)


def test_bad_sha256_names_file_and_line():
    text = lockfile.dumps(_lock(_artifact(sha="xyz")))
    line = next(n for n, l in enumerate(text.splitlines(), 1) if l.startswith("[[profiles"))
    with pytest.raises(LockError, match=rf"images.lock:{line}: six-1.16.0-py2.py3-none-any.whl: sha256 'xyz'"):
        lockfile.loads(text)


def test_missing_field_is_reported_with_line():
    text = lockfile.dumps(_lock()).replace('url = "https://files.example/six.whl"\n', "")
    with pytest.raises(LockError, match=r"images.lock:\d+: artifact #1 of 'p1' \(six\) lacks url"):
        lockfile.loads(text)


def test_missing_file_says_how_to_create_it(tmp_path):
    with pytest.raises(LockError, match="not found. Create it with `ftimg lock`"):
        lockfile.load(tmp_path / "images.lock")


def test_wrong_lock_version_is_rejected():
    text = lockfile.dumps(_lock()).replace("lock_version = 1", "lock_version = 7")
    with pytest.raises(LockError, match=r"images.lock:2: lock_version must be 1"):
        lockfile.loads(text)


def test_repo_lock_is_valid_and_pins_the_design_stack(project_root):
    lock = lockfile.load(project_root / "images.lock")
    default = lock.profile(None)
    assert default.name == "cu121-torch2.1"
    versions = {a.name: a.version for a in default.artifacts}
    assert versions["torch"] == "2.1.2"
    assert versions["deepspeed"] == "0.15.3"
    assert versions["xformers"] == "0.0.23.post1"
    assert versions["nvidia-cublas-cu12"].startswith("12.1")
    assert default.artifact("deepspeed").kind == "sdist"
    assert all(a.role == "build" for a in default.artifacts if a.name in {"pip", "setuptools", "wheel"})
