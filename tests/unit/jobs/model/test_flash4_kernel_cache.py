"""Where FlashAttention-4 keeps its compiled kernels for the next process (model/flash4_kernel_cache.py)."""

import os
import tempfile
from pathlib import Path

import pytest

from ftimg_jobs.model.flash4_kernel_cache import enable_flash4_kernel_cache

DEFAULT_CACHE = str(Path(tempfile.gettempdir()) / "ftimg-kernel-cache" / "flash_attention_cute_dsl")


def test_the_cache_is_turned_on_outside_the_users_home():
    env = {"PATH": "/bin"}
    assert enable_flash4_kernel_cache(env) == DEFAULT_CACHE
    assert env == {"PATH": "/bin", "FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED": "1",
                   "FLASH_ATTENTION_CUTE_DSL_CACHE_DIR": DEFAULT_CACHE}


def test_the_cache_lives_in_the_mounted_hf_cache_when_the_run_has_one(tmp_path):
    env = {"HF_HOME": str(tmp_path)}
    assert enable_flash4_kernel_cache(env) == str(tmp_path / "flash_attention_cute_dsl")


def test_a_read_only_hf_cache_leaves_the_kernels_in_the_temp_directory(tmp_path):
    read_only = tmp_path / "hf-cache"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        if os.access(read_only, os.W_OK):
            pytest.skip("this user writes to read-only directories (root)")
        assert enable_flash4_kernel_cache({"HF_HOME": str(read_only)}) == DEFAULT_CACHE
    finally:
        read_only.chmod(0o755)


def test_a_missing_hf_cache_leaves_the_kernels_in_the_temp_directory(tmp_path):
    assert enable_flash4_kernel_cache({"HF_HOME": str(tmp_path / "absent")}) == DEFAULT_CACHE


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
