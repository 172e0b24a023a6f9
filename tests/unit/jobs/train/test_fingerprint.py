"""A checkpoint is resumed only by the same run: the fingerprint comparison and the resume plan."""

from types import SimpleNamespace

import pytest

from ftimg_jobs.errors import JobError
from ftimg_jobs.train.fingerprint import (FINGERPRINT_FILE, build_fingerprint, changed_settings, differences,
                                          fingerprint_document, write_fingerprint)
from ftimg_jobs.train.resume import plan_resume

SETTINGS = {"world_size": 1, "per_device_train_batch_size": 2, "max_steps": 6, "save_steps": 2}


def fingerprint(job="lora-sft", use_lora=True, q_lora=False, lora_r=8, targets=None, max_length=64, sha="a" * 64):
    return build_fingerprint(
        job, SimpleNamespace(model_name_or_path="/models/tiny"),
        SimpleNamespace(use_lora=use_lora, q_lora=q_lora, lora_r=lora_r, lora_alpha=16, lora_target_modules=targets),
        SimpleNamespace(model_max_length=max_length), sha)


def checkpoint(root, step, print_=None, settings=SETTINGS):
    directory = root / f"checkpoint-{step}"
    directory.mkdir(parents=True)
    (directory / "trainer_state.json").write_text("{}")
    if print_ is not None:
        write_fingerprint(directory, fingerprint_document(print_, settings))
    return str(directory)


def test_fingerprint_names_method_and_ignores_lora_shape_for_full_fine_tuning():
    assert fingerprint(q_lora=True)["method"] == "qlora" and fingerprint(q_lora=True)["quantization"] == "nf4"
    assert fingerprint(targets=["v_proj", "q_proj"])["lora_target_modules"] == ["q_proj", "v_proj"]
    assert fingerprint()["lora_target_modules"] == "all-linear"
    assert fingerprint(use_lora=False, lora_r=8) == fingerprint(use_lora=False, lora_r=16)


def test_differences_name_each_changed_setting_with_before_and_after():
    assert differences(fingerprint(), fingerprint(lora_r=16)) == ["lora_r 8 → 16"]
    assert differences(fingerprint(), fingerprint(sha="b" * 64, max_length=128)) == [
        "model_max_length 64 → 128", f"data_sha256 {'a' * 12} → {'b' * 12}"]
    assert differences(fingerprint(), fingerprint()) == []


def test_same_run_resumes_and_records_changed_resumable_settings(tmp_path):
    path = checkpoint(tmp_path, 4, fingerprint())
    plan = plan_resume("auto", tmp_path, fingerprint(), {**SETTINGS, "max_steps": 10})
    assert plan.checkpoint == path
    assert plan.changed_settings == {"max_steps": [6, 10]}
    assert "max_steps 6 → 10" in plan.notes[0]


def test_different_run_stops_with_one_line_naming_the_difference_and_the_ways_out(tmp_path):
    checkpoint(tmp_path, 6, fingerprint())
    with pytest.raises(JobError) as error:
        plan_resume("auto", tmp_path, fingerprint(lora_r=16), SETTINGS)
    message = str(error.value)
    assert "\n" not in message and "checkpoint-6" in message and "lora_r 8 → 16" in message
    for way_out in ("--resume_from_checkpoint none", "--overwrite_output_dir", "--output_dir"):
        assert way_out in message
    with pytest.raises(JobError, match="lora_r 8 → 16"):
        plan_resume(str(tmp_path / "checkpoint-6"), tmp_path, fingerprint(lora_r=16), SETTINGS)


def test_a_fresh_run_next_to_another_runs_checkpoints_resumes_its_own(tmp_path):
    checkpoint(tmp_path, 8, fingerprint(lora_r=8))
    own = checkpoint(tmp_path, 4, fingerprint(lora_r=16))
    plan = plan_resume("auto", tmp_path, fingerprint(lora_r=16), SETTINGS)
    assert plan.checkpoint == own and "checkpoint-8" in plan.notes[0]
    assert plan_resume("none", tmp_path, fingerprint(lora_r=32), SETTINGS).checkpoint is None


def test_checkpoint_without_its_own_fingerprint_uses_the_output_directorys(tmp_path):
    write_fingerprint(tmp_path, fingerprint_document(fingerprint(), SETTINGS))
    checkpoint(tmp_path, 2)  # killed between saving and fingerprinting
    with pytest.raises(JobError, match="lora_r 8 → 16"):
        plan_resume("auto", tmp_path, fingerprint(lora_r=16), SETTINGS)
    assert plan_resume("auto", tmp_path, fingerprint(), SETTINGS).checkpoint.endswith("checkpoint-2")


def test_checkpoint_from_before_fingerprints_resumes_unchecked_with_a_note(tmp_path):
    path = checkpoint(tmp_path, 3)
    plan = plan_resume("auto", tmp_path, fingerprint(lora_r=16), SETTINGS)
    assert plan.checkpoint == path and "no fingerprint" in plan.notes[0]


def test_overwrite_output_dir_starts_fresh_and_lists_checkpoints_to_remove(tmp_path):
    old = checkpoint(tmp_path, 6, fingerprint())
    plan = plan_resume("auto", tmp_path, fingerprint(lora_r=16), SETTINGS, overwrite_output_dir=True)
    assert (plan.checkpoint, plan.remove) == (None, [old])
    assert (tmp_path / "checkpoint-6" / FINGERPRINT_FILE).is_file()  # planning removes nothing


def test_changed_settings_ignores_settings_the_checkpoint_did_not_record():
    assert changed_settings({"max_steps": 6}, {"max_steps": 6, "world_size": 2}) == {}
    assert changed_settings({"world_size": 1}, {"world_size": 2}) == {"world_size": [1, 2]}
