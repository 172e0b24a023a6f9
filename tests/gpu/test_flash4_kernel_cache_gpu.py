"""FlashAttention-4's kernel cache on a GPU (model/flash4_kernel_cache.py): the kernels compile in the first process
only; the next one loads them from the cache.

    PYTHONPATH=entrypoints python -m pytest -m gpu tests/gpu/test_flash4_kernel_cache_gpu.py -v -s

Each case runs in a fresh process: flash-attn-4 reads its cache's settings when it is imported.
"""

import json
import os
import subprocess
import sys

import pytest
from gpu_jobs import flash4_skip_reason
from project_paths import ENTRYPOINTS

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

# What the child reports: where the cache is, and the first attention call's seconds.
CHILD = """
import json, time
import torch
from ftimg_jobs.model.flash4_kernel_cache import enable_flash4_kernel_cache
report = {"cache": enable_flash4_kernel_cache()}
from flash_attn.cute import flash_attn_func
q, k, v = (torch.randn(2, 1024, 8, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
torch.cuda.synchronize()
started = time.perf_counter()
output, _ = flash_attn_func(q, k, v, causal=True)
output.float().sum().backward()
torch.cuda.synchronize()
report["first_call_seconds"] = time.perf_counter() - started
print("REPORT " + json.dumps(report))
"""


def child(env: dict) -> tuple:
    completed = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=600,
                               env={**os.environ, "PYTHONPATH": str(ENTRYPOINTS), "FA_LOG_LEVEL": "1", **env})
    assert completed.returncode == 0, completed.stderr[-3000:]
    line = [line for line in completed.stdout.splitlines() if line.startswith("REPORT ")][-1]
    return json.loads(line[len("REPORT "):]), completed.stdout  # flash-attn-4 logs to stdout


def test_flash4_kernels_compile_once_and_the_next_process_loads_them(tmp_path):
    reason = flash4_skip_reason()
    if reason:
        pytest.skip(reason)
    env = {"HF_HOME": str(tmp_path), "FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED": "",
           "FLASH_ATTENTION_CUTE_DSL_CACHE_DIR": ""}
    first, first_log = child(env)
    cache = tmp_path / "flash_attention_cute_dsl"
    assert first["cache"] == str(cache)
    exported = sorted(path.name for path in cache.rglob("*.o"))
    assert exported, first_log[-3000:]
    second, second_log = child(env)
    assert "Loading compiled function from disk" in second_log, second_log[-3000:]
    assert "Exporting compiled function" not in second_log, second_log[-3000:]
    assert sorted(path.name for path in cache.rglob("*.o")) == exported
    print(f"first call: {first['first_call_seconds']:.2f} s compiling, {second['first_call_seconds']:.2f} s "
          f"loading {len(exported)} kernels")
    assert second["first_call_seconds"] < first["first_call_seconds"] / 2
