"""Liger's RoPE on a Hopper or Blackwell GPU with the CuTe DSL installed: which kernel serves long rows, and
whether a new sequence length compiles a new one (train/kernels.py).

    PYTHONPATH=entrypoints python -m pytest -m gpu tests/gpu/test_liger_rope_gpu.py -v -s

Skipped unless liger-kernel's dispatcher and its CuTe DSL RoPE import (nvidia-cutlass-dsl, which flash-attn-4
brings) and the GPU is sm90 or newer.
"""

import importlib.util

import pytest

torch = pytest.importorskip("torch")

from ftimg_jobs.train.kernels import LIGER_ROPE_ENV, pin_liger_rope  # noqa: E402


def skip_reason():
    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 9:
        return "needs a Hopper or newer GPU"
    for module in ("liger_kernel.backends", "cutlass.cute"):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            return f"{module} is not installed"
    try:
        import liger_kernel.backends  # noqa: F401
        import liger_kernel.ops.cutedsl.ops.rope  # noqa: F401
    except Exception as error:  # the DSL's loader raises more than ImportError
        return f"liger-kernel's CuTe DSL RoPE does not import ({type(error).__name__}: {error})"
    return None


SKIP = skip_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(SKIP is not None, reason=str(SKIP))]

BATCH, HEADS, KV_HEADS, DIM = 1, 32, 8, 128


def rope_step(length: int) -> None:
    """RoPE forward and backward on one row of a 32-head model: 32 x length query head-rows."""
    from liger_kernel.transformers.rope import liger_rotary_pos_emb

    q = torch.randn(BATCH, HEADS, length, DIM, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(BATCH, KV_HEADS, length, DIM, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    wavelengths = 10000 ** (torch.arange(DIM // 2, device="cuda") / DIM)
    angles = torch.arange(length, device="cuda").float()[:, None] / wavelengths
    angles = torch.cat([angles, angles], dim=-1)[None]
    q_out, k_out = liger_rotary_pos_emb(q * 1, k * 1, angles.cos().bfloat16(), angles.sin().bfloat16())
    (q_out.float().sum() + k_out.float().sum()).backward()
    torch.cuda.synchronize()


def compiled_cute_rope_kernels() -> int:
    from liger_kernel.ops.cutedsl.ops import rope

    return len(rope._COMPILE_CACHE)


@pytest.fixture
def no_liger_choice(monkeypatch):
    for name in LIGER_ROPE_ENV:
        monkeypatch.delenv(name, raising=False)


def test_unpinned_liger_compiles_a_cute_rope_kernel_for_each_new_length_over_4096_tokens(no_liger_choice):
    """The cause pin_liger_rope removes: without it every new long length compiles."""
    before = compiled_cute_rope_kernels()
    rope_step(4096 + 64)
    after_first = compiled_cute_rope_kernels()
    rope_step(4096 + 128)
    assert after_first > before
    assert compiled_cute_rope_kernels() > after_first


def test_pinned_rope_compiles_no_cute_kernel_for_new_lengths(no_liger_choice, monkeypatch):
    # Recorded by monkeypatch, so the pin that pin_liger_rope writes into the process's environment is undone after.
    monkeypatch.setenv(LIGER_ROPE_ENV[0], "")
    assert pin_liger_rope().startswith("nvidia-triton")
    before = compiled_cute_rope_kernels()
    for length in (4096 + 192, 4096 + 256, 6000):
        rope_step(length)
    assert compiled_cute_rope_kernels() == before
