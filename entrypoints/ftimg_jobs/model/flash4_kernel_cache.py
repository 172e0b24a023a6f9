"""FlashAttention-4's compiled kernels, kept on disk for the next process (set before flash-attn-4 is imported).

Its CuTe DSL kernels compile at the first call: about 8 s for training's forward and backward pair, in
every process. flash-attn-4 can keep them on disk, if asked through the environment before it is imported;
then the next process (a resumed run, the next job in the same container, the workers of one node, an infer
job's prefill after training) loads them. The training jobs and infer set it at their start.
The cache directory is set with it: flash-attn-4's default one is named after the login user, which a
container started with the host's uid may not have. A choice the user made is kept.
"""

import os
import tempfile
from pathlib import Path

FLASH4_CACHE_ENV = "FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED"
FLASH4_CACHE_DIR_ENV = "FLASH_ATTENTION_CUTE_DSL_CACHE_DIR"
# Under HF_HOME when the run has one (ftimg run --hf-cache mounts it from the host, so it outlives the container).
FLASH4_CACHE_SUBDIR = "flash_attention_cute_dsl"


def kernel_cache_root(env) -> Path:
    """HF_HOME where the run has one it may write to; the temp directory otherwise. flash-attn-4 creates its
    cache directory when it is imported, and a failure there would make the jobs fall back to SDPA."""
    hf_home = env.get("HF_HOME")
    if hf_home and os.access(hf_home, os.W_OK):
        return Path(hf_home)
    return Path(tempfile.gettempdir()) / "ftimg-kernel-cache"


def enable_flash4_kernel_cache(env=None) -> str:
    """Turn flash-attn-4's disk cache on in ``env`` (the process's by default) unless it was turned off;
    returns where it is (or why not), for run.json."""
    env = os.environ if env is None else env
    if (env.get(FLASH4_CACHE_ENV) or "1") != "1":
        return f"off ({FLASH4_CACHE_ENV}={env[FLASH4_CACHE_ENV]} given)"
    env[FLASH4_CACHE_ENV] = "1"
    if not env.get(FLASH4_CACHE_DIR_ENV):
        env[FLASH4_CACHE_DIR_ENV] = str(kernel_cache_root(env) / FLASH4_CACHE_SUBDIR)
    return env[FLASH4_CACHE_DIR_ENV]
