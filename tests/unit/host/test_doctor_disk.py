"""The disk check `ftimg doctor` prints and `ftimg build` warns with before a stack build."""

import shutil

from ftimg import doctor


def test_enough_space_passes_and_names_the_engine_root(tmp_path):
    check = doctor.disk_check({"DockerRootDir": str(tmp_path)})
    free_gib = shutil.disk_usage(tmp_path).free / (1 << 30)
    assert check.ok == (free_gib >= doctor.MIN_FREE_GIB)
    assert str(tmp_path) in check.detail and "GiB free" in check.detail


def test_too_little_space_fails_with_what_to_do(tmp_path, monkeypatch):
    free_gib = shutil.disk_usage(tmp_path).free / (1 << 30)
    monkeypatch.setattr(doctor, "MIN_FREE_GIB", int(free_gib) + 1000)
    check = doctor.disk_check({"DockerRootDir": str(tmp_path)})
    assert not check.ok and check.required
    assert f"free at least {int(free_gib) + 1000} GiB" in check.fix and "docker system prune" in check.fix


def test_a_remote_engine_root_is_not_checked(tmp_path):
    check = doctor.disk_check({"DockerRootDir": str(tmp_path / "not-on-this-host")})
    assert check.ok and not check.required and "remote engine" in check.detail
