"""Where FlashAttention-4 keeps its compiled kernels for the next training process (train/kernel_cache.py)."""

import tempfile
from pathlib import Path

from ftimg_jobs.train.kernel_cache import enable_flash4_kernel_cache

DEFAULT_CACHE = str(Path(tempfile.gettempdir()) / "ftimg-kernel-cache" / "flash_attention_cute_dsl")


def test_the_cache_is_turned_on_outside_the_users_home():
    env = {"PATH": "/bin"}
    assert enable_flash4_kernel_cache(env) == DEFAULT_CACHE
    assert env == {"PATH": "/bin", "FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED": "1",
                   "FLASH_ATTENTION_CUTE_DSL_CACHE_DIR": DEFAULT_CACHE}


def test_the_cache_lives_in_the_mounted_hf_cache_when_the_run_has_one():
    env = {"HF_HOME": "/mnt/hf-cache"}
    assert enable_flash4_kernel_cache(env) == "/mnt/hf-cache/flash_attention_cute_dsl"


def test_a_directory_the_user_chose_is_kept():
    env = {"FLASH_ATTENTION_CUTE_DSL_CACHE_DIR": "/cache/fa4"}
    assert enable_flash4_kernel_cache(env) == "/cache/fa4"
    assert env["FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED"] == "1"


def test_a_cache_turned_off_stays_off():
    env = {"FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED": "0"}
    assert enable_flash4_kernel_cache(env) == "off (FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED=0 given)"
    assert "FLASH_ATTENTION_CUTE_DSL_CACHE_DIR" not in env


def test_empty_variables_are_no_choice():
    env = {"FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED": "", "FLASH_ATTENTION_CUTE_DSL_CACHE_DIR": ""}
    enable_flash4_kernel_cache(env)
    assert env == {"FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED": "1", "FLASH_ATTENTION_CUTE_DSL_CACHE_DIR": DEFAULT_CACHE}
