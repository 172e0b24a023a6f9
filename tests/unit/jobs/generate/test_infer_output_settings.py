"""infer resumes only onto output generated from the same input, model, adapter and generation settings."""

from types import SimpleNamespace

import pytest

from ftimg_jobs.generate.resume import (
    InferOutputError,
    check_output_settings,
    output_settings,
    record_output_settings,
    settings_path,
)


def settings(tmp_path, **changes):
    (tmp_path / "prompts.jsonl").write_text(changes.pop("input", '{"prompt": "hi"}\n'))
    generation = dict(input_path=str(tmp_path / "prompts.jsonl"), max_new_tokens=64, do_sample=False,
                      temperature=None, top_p=None, top_k=None, num_beams=1, torch_dtype="auto", seed=42,
                      batch_size=8, engine="auto", repetition_penalty=None, stop=None, ignore_eos=False)
    generation.update(changes)
    return output_settings(SimpleNamespace(model_name_or_path="/models/tiny"),
                           SimpleNamespace(adapter_name_or_path="out/lora"), SimpleNamespace(**generation))


def test_same_settings_resume_and_batch_size_or_greedy_seed_may_change(tmp_path):
    output = str(tmp_path / "p.jsonl")
    (tmp_path / "p.jsonl").write_text('{"id": 0}\n')
    record_output_settings(output, settings(tmp_path))
    check_output_settings(output, settings(tmp_path, batch_size=32, seed=7, engine="eager"))


def test_other_settings_or_input_stop_with_one_line_naming_them(tmp_path):
    output = str(tmp_path / "p.jsonl")
    (tmp_path / "p.jsonl").write_text('{"id": 0}\n')
    record_output_settings(output, settings(tmp_path))
    with pytest.raises(InferOutputError) as error:
        check_output_settings(output, settings(tmp_path, max_new_tokens=128))
    assert "max_new_tokens 64 → 128" in str(error.value) and "\n" not in str(error.value)
    assert "another --output_path" in str(error.value)
    with pytest.raises(InferOutputError, match=r"stop None → \['###'\]"):
        check_output_settings(output, settings(tmp_path, stop=["###"]))
    with pytest.raises(InferOutputError, match=r"input_sha256 \w{12} → \w{12}\)"):
        check_output_settings(output, settings(tmp_path, input='{"prompt": "other"}\n'))


def test_no_output_yet_means_nothing_to_check(tmp_path):
    output = str(tmp_path / "p.jsonl")
    record_output_settings(output, settings(tmp_path))  # crashed before the first record
    check_output_settings(output, settings(tmp_path, max_new_tokens=128))
    assert settings_path(output).endswith("p.jsonl.settings.json")


def test_other_rendered_prompts_stop_and_a_file_from_before_they_were_recorded_resumes(tmp_path):
    from ftimg_jobs.generate.resume import prompts_sha256

    output = str(tmp_path / "p.jsonl")
    (tmp_path / "p.jsonl").write_text('{"id": 0}\n')
    plain = prompts_sha256([0, "a"], {0: "hi", "a": "there"})
    assert plain != prompts_sha256([0, "a"], {0: "<|system|>French<|user|>hi", "a": "there"})
    assert plain != prompts_sha256([0, "a"], {0: "hithere", "a": ""})  # the split between records counts
    record_output_settings(output, {**settings(tmp_path), "prompts_sha256": plain})
    with pytest.raises(InferOutputError, match=r"prompts_sha256 \w{12} → \w{12}"):
        check_output_settings(output, {**settings(tmp_path), "prompts_sha256": "f" * 64})
    older = {key: value for key, value in settings(tmp_path).items() if key != "prompts_sha256"}
    record_output_settings(output, older)
    check_output_settings(output, {**settings(tmp_path), "prompts_sha256": plain})
