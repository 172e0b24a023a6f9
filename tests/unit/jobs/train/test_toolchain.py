"""Triton's run-time needs (train/toolchain.py): a C compiler and the Python headers."""

import sysconfig

from ftimg_jobs.train import toolchain


def test_no_compiler_is_named(monkeypatch):
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(toolchain.shutil, "which", lambda name: None)
    assert "C compiler" in toolchain.triton_toolchain_problem()


def test_missing_headers_name_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", "cc")
    monkeypatch.setattr(sysconfig, "get_paths", lambda: {"include": str(tmp_path)})
    assert toolchain.triton_toolchain_problem() == (
        f"Triton needs the Python headers at run time and {tmp_path / 'Python.h'} is missing")


def test_compiler_and_headers_are_enough(monkeypatch, tmp_path):
    (tmp_path / "Python.h").write_text("")
    monkeypatch.setenv("CC", "cc")
    monkeypatch.setattr(sysconfig, "get_paths", lambda: {"include": str(tmp_path)})
    assert toolchain.triton_toolchain_problem() is None
