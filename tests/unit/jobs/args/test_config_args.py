"""Merging catalogue defaults, a YAML config and CLI flags; unknown keys/flags; aliases; --deepspeed names."""

import json

import pytest

from ftimg_jobs.args.config import assemble_argv, flag_value
from ftimg_jobs.errors import JobError
from ftimg_jobs.model.precision import training_precision_tokens as precision_tokens

KNOWN = {"model_name_or_path", "data_path", "lora_r", "lora_alpha", "q_lora", "flash_attn", "bf16", "fp16",
         "output_dir", "deepspeed", "eval_strategy", "lora_target_modules", "accelerator_config",
         "gradient_checkpointing", "learning_rate"}


@pytest.fixture
def shipped(tmp_path):
    directory = tmp_path / "deepspeed"
    directory.mkdir()
    for name in ("zero2", "zero3_offload"):
        (directory / f"{name}.json").write_text("{}")
    return directory


def write_yaml(tmp_path, text):
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return str(path)


def test_cli_overrides_yaml_which_overrides_defaults(tmp_path, shipped):
    config = write_yaml(tmp_path, "lora_r: 16\nlora_alpha: 32\nlora_target_modules: [q_proj, v_proj]\n")
    tokens = assemble_argv({"lora_r": 8, "q_lora": True}, [config, "--lora_r", "64"], KNOWN, shipped)
    assert flag_value(tokens, "lora_r") == "64"
    assert flag_value(tokens, "lora_alpha") == "32"
    assert flag_value(tokens, "q_lora") == "True"
    assert tokens[tokens.index("--lora_target_modules") + 1:][:2] == ["q_proj", "v_proj"]


def test_unknown_yaml_keys_and_flags_are_reported_together(tmp_path, shipped):
    config = write_yaml(tmp_path, "lora_rr: 16\nfoo: 1\n")
    with pytest.raises(JobError) as error:
        assemble_argv({}, [config, "--data_pth", "x.jsonl"], KNOWN, shipped)
    message = str(error.value)
    assert "unknown key(s) in" in message and "'lora_rr' (did you mean 'lora_r'?)" in message and "'foo'" in message
    assert "unknown flag(s): '--data_pth' (did you mean '--data_path'?)" in message


def test_seed_flags_work_as_written(shipped):
    argv = ["--model_name_or_path", "m", "--data_path", "d.json", "--lora_r", "8", "--lora_alpha", "16",
            "--q_lora", "True", "--bf16", "True", "--gradient_checkpointing", "--flash_attn",
            "--evaluation_strategy", "no", "--dispatch_batches", "True"]
    tokens = assemble_argv({}, argv, KNOWN, shipped)
    assert flag_value(tokens, "eval_strategy") == "no"
    assert flag_value(tokens, "flash_attn") == "True"
    assert json.loads(flag_value(tokens, "accelerator_config")) == {"dispatch_batches": True}
    assert "--dispatch_batches" not in tokens


def test_equals_dashes_and_aliases_are_normalised(shipped):
    tokens = assemble_argv({}, ["--lora-r=4", "--use_flash_attention", "true", "--lora_rank", "2"], KNOWN, shipped)
    assert tokens == ["--lora_r", "4", "--flash_attn", "true", "--lora_r", "2"]


def test_deepspeed_accepts_shipped_name_or_existing_path(tmp_path, shipped):
    tokens = assemble_argv({}, ["--deepspeed", "zero3_offload"], KNOWN, shipped)
    assert flag_value(tokens, "deepspeed") == str(shipped / "zero3_offload.json")
    own = tmp_path / "mine.json"
    own.write_text("{}")
    assert flag_value(assemble_argv({}, ["--deepspeed", str(own)], KNOWN, shipped), "deepspeed") == str(own)


def test_missing_deepspeed_file_is_named_with_the_shipped_choices(shipped):
    with pytest.raises(JobError, match=r"--deepspeed ds_z9\.json: no such file.*zero2, zero3_offload"):
        assemble_argv({}, ["--deepspeed", "ds_z9.json"], KNOWN, shipped)


def test_yaml_must_be_a_mapping_and_valid(tmp_path, shipped):
    with pytest.raises(JobError, match="must be a mapping"):
        assemble_argv({}, [write_yaml(tmp_path, "- a\n- b\n")], KNOWN, shipped)
    with pytest.raises(JobError, match=r"job\.yaml:2: invalid YAML"):
        assemble_argv({}, [write_yaml(tmp_path, "lora_r: 1\n  bad: [\n")], KNOWN, shipped)
    with pytest.raises(JobError, match="config file .*missing.yaml not found"):
        assemble_argv({}, [str(tmp_path / "missing.yaml")], KNOWN, shipped)


def test_yaml_values_render_as_flags(tmp_path, shipped):
    config = write_yaml(tmp_path, "q_lora: false\naccelerator_config: {dispatch_batches: false}\nlora_r: null\n")
    tokens = assemble_argv({}, [config], KNOWN, shipped)
    assert tokens == ["--q_lora", "False", "--accelerator_config", '{"dispatch_batches": false}']


def test_precision_is_fp32_on_cpu_with_a_note():
    tokens, note = precision_tokens(["--bf16", "True"], cuda_available=False, bf16_supported=False)
    assert flag_value(tokens, "bf16") == "False" and flag_value(tokens, "fp16") == "False"
    assert "fp32" in note
    assert precision_tokens([], cuda_available=False, bf16_supported=False)[1] is None


def test_precision_defaults_to_bf16_or_fp16_on_gpu():
    assert flag_value(precision_tokens([], True, True)[0], "bf16") == "True"
    assert flag_value(precision_tokens([], True, False)[0], "fp16") == "True"
    assert precision_tokens(["--fp16", "True"], True, True)[0] == ["--fp16", "True"]
    with pytest.raises(JobError, match="use --fp16 True"):
        precision_tokens(["--bf16"], True, False)


def test_retired_warmup_ratio_maps_to_warmup_steps_only_where_unknown(tmp_path, shipped):
    newer = (KNOWN | {"warmup_steps"})
    assert assemble_argv({}, ["--warmup_ratio", "0.03"], newer, shipped) == ["--warmup_steps", "0.03"]
    older = newer | {"warmup_ratio"}
    assert assemble_argv({}, ["--warmup_ratio", "0.03"], older, shipped) == ["--warmup_ratio", "0.03"]
    config = write_yaml(tmp_path, "warmup_ratio: 0.1\n")
    assert assemble_argv({}, [config], newer, shipped) == ["--warmup_steps", "0.1"]
