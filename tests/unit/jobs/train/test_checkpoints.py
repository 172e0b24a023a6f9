"""Choosing the checkpoint to resume from."""

import pytest

from ftimg_jobs.errors import JobError
from ftimg_jobs.train.resume import latest_checkpoint, resolve_resume


def make_checkpoint(root, step, complete=True):
    directory = root / f"checkpoint-{step}"
    directory.mkdir(parents=True)
    if complete:
        (directory / "trainer_state.json").write_text("{}")
    return directory


def test_latest_is_highest_complete_step(tmp_path):
    make_checkpoint(tmp_path, 9)
    make_checkpoint(tmp_path, 10)
    make_checkpoint(tmp_path, 12, complete=False)  # killed while saving
    (tmp_path / "checkpoint-notanumber").mkdir()
    assert latest_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")


def test_auto_starts_fresh_without_checkpoints(tmp_path):
    assert resolve_resume("auto", tmp_path / "missing") is None
    assert resolve_resume("auto", tmp_path) is None


def test_auto_and_true_resume_latest(tmp_path):
    make_checkpoint(tmp_path, 3)
    assert resolve_resume("auto", tmp_path) == str(tmp_path / "checkpoint-3")
    assert resolve_resume("True", tmp_path) == str(tmp_path / "checkpoint-3")
    assert resolve_resume("false", tmp_path) is None
    assert resolve_resume(None, tmp_path) is None


def test_true_without_checkpoint_and_bad_path_are_errors(tmp_path):
    with pytest.raises(JobError, match="no complete checkpoint"):
        resolve_resume("true", tmp_path)
    with pytest.raises(JobError, match="not a complete checkpoint directory"):
        resolve_resume(str(tmp_path / "checkpoint-7"), tmp_path)


def test_explicit_checkpoint_path(tmp_path):
    path = make_checkpoint(tmp_path / "other", 5)
    assert resolve_resume(str(path), tmp_path) == str(path)
