"""Environment a training process sets for itself before CUDA starts; a value the user set is kept.

Two settings that torch and FlashAttention-4 read from the environment, once:
- The CUDA caching allocator's expandable segments. Without them the allocator reserves a new block for each
  new tensor size, and a step's reserve grows well past what it holds: on an H200 the LoRA 7B step at a 24 GiB
  budget held 21.8 GiB and reserved 24.8 (docs/performance.md). A segment that grows in place reuses the same
  address range, so the reserve stays near the peak, and a memory budget holds for what `nvidia-smi` shows.
  PyTorch documents the setting for exactly this fragmentation; torch reads it when CUDA initialises, so it is
  set before anything touches the GPU.
- FlashAttention-4's compiled-kernel cache. Its CuTe DSL kernels compile at the first call, about 8 s for the
  forward and backward pair each process; with the cache the next process (a resumed run, the next job in
  the same container, the workers of one node) loads them from disk. The cache directory is set with it:
  the default one is named after the login user, which a container started with the host's uid may not have.
"""

import os
import tempfile
from pathlib import Path

ALLOCATOR_ENV = "PYTORCH_CUDA_ALLOC_CONF"
EXPANDABLE_SEGMENTS = "expandable_segments:True"
FLASH4_CACHE_ENV = "FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED"
FLASH4_CACHE_DIR_ENV = "FLASH_ATTENTION_CUTE_DSL_CACHE_DIR"
# Under HF_HOME when the run has one (ftimg run --hf-cache mounts it from the host, so it outlives the container).
FLASH4_CACHE_SUBDIR = "flash_attention_cute_dsl"


def kernel_cache_root(env) -> Path:
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"])
    return Path(tempfile.gettempdir()) / "ftimg-kernel-cache"


def set_training_process_defaults(env=None) -> dict:
    """Set the allocator and kernel-cache variables that are unset in ``env`` (the process's by default).
    Returns what each one is now and whether this function chose it, for run.json."""
    env = os.environ if env is None else env
    notes = {}
    if env.get(ALLOCATOR_ENV):
        notes["cuda_allocator"] = f"{env[ALLOCATOR_ENV]} ({ALLOCATOR_ENV} given)"
    else:
        env[ALLOCATOR_ENV] = EXPANDABLE_SEGMENTS
        notes["cuda_allocator"] = f"{EXPANDABLE_SEGMENTS} (segments grow in place: the reserve stays near the peak)"
    if (env.get(FLASH4_CACHE_ENV) or "1") != "1":
        notes["flash4_kernel_cache"] = f"off ({FLASH4_CACHE_ENV}={env[FLASH4_CACHE_ENV]} given)"
        return notes
    env[FLASH4_CACHE_ENV] = "1"
    if not env.get(FLASH4_CACHE_DIR_ENV):
        env[FLASH4_CACHE_DIR_ENV] = str(kernel_cache_root(env) / FLASH4_CACHE_SUBDIR)
    notes["flash4_kernel_cache"] = env[FLASH4_CACHE_DIR_ENV]
    return notes
