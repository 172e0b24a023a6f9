"""run.json content: secrets dropped, image facts from the environment, data hashed."""

import hashlib
import json

from ftimg_jobs.run_manifest import build_manifest, data_files_info, scrub_secrets, write_manifest


def test_secret_keys_are_dropped_at_any_depth():
    args = {"hub_token": "x", "learning_rate": 1e-4, "nested": {"api_key": "k", "db_password": "p", "keep": 1},
            "list": [{"SECRET_thing": 1, "ok": 2}]}
    assert scrub_secrets(args) == {"learning_rate": 1e-4, "nested": {"keep": 1}, "list": [{"ok": 2}]}


def manifest(env):
    return build_manifest(job="lora-sft", args={"lora_r": 8, "hub_token": "hf_x"}, env=env, status="completed",
                          exit_code=0, metrics={"train_loss": 1.5}, data_files={}, attention={"implementation": "sdpa"},
                          device={"type": "cpu"}, world_size=1, wall_time_s=1.23456, peak_gpu_memory_bytes=None,
                          global_step=4, resumed_from=None)


def test_secret_names_are_whole_words_so_generation_flags_survive():
    args = {"hub_token": "x", "HF_TOKEN": "x", "aws_secret_access_key": "x", "api-key": "x",
            "max_new_tokens": 32, "keep_last": 1, "model_max_length": 128}
    assert scrub_secrets(args) == {"max_new_tokens": 32, "keep_last": 1, "model_max_length": 128}


def test_a_tokenizers_special_tokens_stay_in_run_json():
    kept = {"eos_token_ids": [2, 32000], "add_bos_token": True, "add_eos_token": False, "pad_token_id": 0,
            "decoder_start_token_id": 1, "bos_token": "<s>", "additional_special_tokens": ["<|im_end|>"]}
    assert scrub_secrets({**kept, "token": "hf_x", "use_auth_token": "hf_x", "hf_token": "hf_x"}) == kept


def test_manifest_records_image_and_scrubbed_env():
    env = {"FTIMG_PROFILE": "cu121-torch2.1", "FTIMG_LOCK_HASH": "abc", "HF_TOKEN": "hf_x",
           "FTIMG_REGISTRY_PASSWORD": "p", "NNODES": "1", "HOME": "/root"}
    result = manifest(env)
    assert result["image"] == {"profile": "cu121-torch2.1", "lock_hash": "abc"}
    assert result["env"] == {"FTIMG_LOCK_HASH": "abc", "FTIMG_PROFILE": "cu121-torch2.1", "NNODES": "1"}
    assert result["args"] == {"lora_r": 8}
    assert "hf_x" not in json.dumps(result)
    assert result["wall_time_s"] == 1.235 and result["peak_gpu_memory_bytes"] is None
    assert set(result["versions"]) >= {"torch", "transformers", "peft", "accelerate", "deepspeed", "bitsandbytes"}


def test_outside_an_image_profile_is_null():
    assert manifest({})["image"] == {"profile": None, "lock_hash": None}


def test_data_files_are_hashed_and_written(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_bytes(b'{"text": "a", "label": 1}\n')
    info = data_files_info({"train": str(data), "eval": None})
    assert info == {"train": {"path": str(data), "sha256": hashlib.sha256(data.read_bytes()).hexdigest()}}
    path = write_manifest(tmp_path / "out", {"job": "x", "text": "中文"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"job": "x", "text": "中文"}
