"""The allocator and kernel-cache settings a training process gives itself (train/process_defaults.py)."""

import tempfile
from pathlib import Path

from ftimg_jobs.train.process_defaults import set_training_process_defaults

DEFAULT_CACHE = str(Path(tempfile.gettempdir()) / "ftimg-kernel-cache" / "flash_attention_cute_dsl")


def test_unset_variables_get_expandable_segments_and_a_flash4_cache_outside_the_users_home():
    env = {"PATH": "/bin"}
    notes = set_training_process_defaults(env)
    assert env == {"PATH": "/bin", "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
                   "FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED": "1",
                   "FLASH_ATTENTION_CUTE_DSL_CACHE_DIR": DEFAULT_CACHE}
    assert notes["cuda_allocator"].startswith("expandable_segments:True (")
    assert notes["flash4_kernel_cache"] == DEFAULT_CACHE


def test_the_flash4_cache_lives_in_the_mounted_hf_cache_when_the_run_has_one():
    env = {"HF_HOME": "/mnt/hf-cache"}
    set_training_process_defaults(env)
    assert env["FLASH_ATTENTION_CUTE_DSL_CACHE_DIR"] == "/mnt/hf-cache/flash_attention_cute_dsl"


def test_the_users_own_settings_are_kept_and_named():
    env = {"PYTORCH_CUDA_ALLOC_CONF": "max_split_size_mb:128", "FLASH_ATTENTION_CUTE_DSL_CACHE_DIR": "/cache/fa4"}
    notes = set_training_process_defaults(env)
    assert env["PYTORCH_CUDA_ALLOC_CONF"] == "max_split_size_mb:128"
    assert notes["cuda_allocator"] == "max_split_size_mb:128 (PYTORCH_CUDA_ALLOC_CONF given)"
    assert env["FLASH_ATTENTION_CUTE_DSL_CACHE_DIR"] == "/cache/fa4"
    assert env["FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED"] == "1"


def test_a_flash4_cache_turned_off_stays_off():
    env = {"FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED": "0"}
    notes = set_training_process_defaults(env)
    assert "FLASH_ATTENTION_CUTE_DSL_CACHE_DIR" not in env
    assert notes["flash4_kernel_cache"] == "off (FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED=0 given)"


def test_an_empty_allocator_variable_is_no_choice():
    env = {"PYTORCH_CUDA_ALLOC_CONF": ""}
    set_training_process_defaults(env)
    assert env["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"


def test_empty_flash4_variables_are_no_choice():
    env = {"FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED": "", "FLASH_ATTENTION_CUTE_DSL_CACHE_DIR": ""}
    set_training_process_defaults(env)
    assert env["FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED"] == "1"
    assert env["FLASH_ATTENTION_CUTE_DSL_CACHE_DIR"] == DEFAULT_CACHE
