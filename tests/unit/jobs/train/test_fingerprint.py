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
    for way_out in ("--overwrite_output_dir", "--output_dir"):
        assert way_out in message
    assert "--resume_from_checkpoint none" not in message  # a fresh run next to them would overwrite theirs
    with pytest.raises(JobError, match="lora_r 8 → 16"):
        plan_resume(str(tmp_path / "checkpoint-6"), tmp_path, fingerprint(lora_r=16), SETTINGS)


def test_a_fresh_run_next_to_another_runs_checkpoints_resumes_its_own(tmp_path):
    checkpoint(tmp_path, 8, fingerprint(lora_r=8))
    own = checkpoint(tmp_path, 4, fingerprint(lora_r=16))
    plan = plan_resume("auto", tmp_path, fingerprint(lora_r=16), SETTINGS)
    assert plan.checkpoint == own and "checkpoint-8" in plan.notes[0]


def test_a_fresh_run_next_to_another_runs_checkpoints_is_refused_naming_the_ways_out(tmp_path):
    checkpoint(tmp_path, 8, fingerprint(lora_r=8))
    with pytest.raises(JobError) as error:
        plan_resume("none", tmp_path, fingerprint(lora_r=32), SETTINGS)
    message = str(error.value)
    assert "\n" not in message and "checkpoint-8" in message and "--overwrite_output_dir" in message
    assert "--output_dir" in message
    assert plan_resume("none", tmp_path, fingerprint(lora_r=8), SETTINGS).checkpoint is None  # its own: fine
    assert plan_resume("none", tmp_path / "empty", fingerprint(lora_r=32), SETTINGS).checkpoint is None


def test_a_named_checkpoint_elsewhere_is_judged_by_its_own_directory_not_this_output_dir(tmp_path):
    elsewhere, output_dir = tmp_path / "elsewhere", tmp_path / "out"
    elsewhere.mkdir()
    output_dir.mkdir()
    write_fingerprint(elsewhere, fingerprint_document(fingerprint(lora_r=16), SETTINGS))
    write_fingerprint(output_dir, fingerprint_document(fingerprint(), SETTINGS))  # this run's
    named = checkpoint(elsewhere, 5)  # killed between saving and fingerprinting
    with pytest.raises(JobError, match="lora_r 16 → 8"):
        plan_resume(named, output_dir, fingerprint(), SETTINGS)


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


def test_overwrite_output_dir_keeps_and_resumes_this_runs_own_checkpoints(tmp_path):
    # Seed 001 always passes --overwrite_output_dir: a requeued job must still resume its own checkpoint.
    other = checkpoint(tmp_path, 8, fingerprint(lora_r=16))
    own = checkpoint(tmp_path, 4, fingerprint())
    unknown = checkpoint(tmp_path, 2)
    plan = plan_resume("auto", tmp_path, fingerprint(), {**SETTINGS, "max_steps": 10}, overwrite_output_dir=True)
    assert (plan.checkpoint, plan.remove) == (own, [other, unknown])
    assert plan.changed_settings == {"max_steps": [6, 10]}
    fresh = plan_resume("none", tmp_path, fingerprint(), SETTINGS, overwrite_output_dir=True)
    assert (fresh.checkpoint, fresh.remove) == (None, [other, own, unknown])


def test_fingerprint_covers_the_classifier_task_the_zero_stage_and_normalises_model_paths(tmp_path):
    zero2 = tmp_path / "zero2.json"
    zero2.write_text('{"zero_optimization": {"stage": 2}}')
    lora = SimpleNamespace(use_lora=True, q_lora=False, lora_r=8, lora_alpha=16, lora_target_modules=None)

    def cls(model="/models/tiny", task_type="classification", deepspeed=None):
        return build_fingerprint("lora-cls", SimpleNamespace(model_name_or_path=model), lora,
                                 SimpleNamespace(model_max_length=64, task_type=task_type), "a" * 64,
                                 SimpleNamespace(deepspeed=deepspeed))

    assert differences(cls(), cls(task_type="regression")) == ["task_type classification → regression"]
    assert differences(cls(), cls(deepspeed=str(zero2))) == ["zero_stage none → 2"]
    assert differences(cls(deepspeed={"zero_optimization": {"stage": 3}}), cls(deepspeed=str(zero2))) == [
        "zero_stage 3 → 2"]
    assert cls(model="/models/tiny/") == cls(model="/models/./tiny") == cls()
    assert cls(model="org/name")["base_model"] == "org/name"


def test_a_fingerprint_written_before_a_key_was_recorded_still_matches(tmp_path):
    older = {key: value for key, value in fingerprint().items() if key not in ("task_type", "zero_stage")}
    path = checkpoint(tmp_path, 4, older)
    assert plan_resume("auto", tmp_path, fingerprint(), SETTINGS).checkpoint == path


def test_changed_settings_ignores_settings_the_checkpoint_did_not_record():
    assert changed_settings({"max_steps": 6}, {"max_steps": 6, "world_size": 2}) == {}
    assert changed_settings({"world_size": 1}, {"world_size": 2}) == {"world_size": [1, 2]}
