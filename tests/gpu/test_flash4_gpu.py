"""FlashAttention-4 (model/flash4_attention.py) on a Hopper or Blackwell GPU: its kernels against SDPA for
fixed-length causal rows and a padding-free row (outputs and gradients), no recompilation for new lengths,
a whole Llama switched to it, and the lora-sft and infer jobs running on it.

    PYTHONPATH=entrypoints python -m pytest -m gpu tests/gpu/test_flash4_gpu.py -v -s

Skipped unless flash_attn.cute imports and the GPU is one FlashAttention-4 is chosen on (model/attention.py).
"""

import math
import time
from types import SimpleNamespace

import pytest
from gpu_jobs import run_job as run_gpu_job
from gpu_jobs import flash4_skip_reason, random_llama_on_gpu, save_small_llama
from project_paths import ENTRYPOINTS

torch = pytest.importorskip("torch")

from ftimg_jobs.model.attention import FLASH4  # noqa: E402
from ftimg_jobs.model.flash4_attention import flash4_attention  # noqa: E402


SKIP = flash4_skip_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(SKIP is not None, reason=str(SKIP))]

HEADS, KV_HEADS, DIM = 32, 8, 128
LENGTHS = [300, 1000, 57, 700]  # a padding-free row of four examples, as the collator packs them
ATTENTION = SimpleNamespace(is_causal=True, num_key_value_groups=HEADS // KV_HEADS)


def compiled_kernels() -> dict:
    """How many kernel variants flash-attn-4 has compiled in this process, per entry point."""
    from flash_attn.cute import interface

    names = ("_flash_attn_fwd", "_flash_attn_bwd", "_bwd_preprocess", "_bwd_postprocess_convert")
    return {name: len(getattr(interface, name).compile_cache.cache) for name in names}


def qkv(batch, length, seed=0):
    generator = torch.Generator(device="cuda").manual_seed(seed)

    def tensor(heads):
        return torch.randn(batch, heads, length, DIM, device="cuda", dtype=torch.bfloat16,
                           generator=generator).requires_grad_()

    return tensor(HEADS), tensor(KV_HEADS), tensor(KV_HEADS)


def positions(lengths):
    return torch.tensor([[p for n in lengths for p in range(n)]], device="cuda")


def sdpa_per_example(q, k, v, lengths, dtype):
    """The reference: causal SDPA of each example on its own, ``(batch, L, heads, dim)``."""
    pieces, start = [], 0
    for n in lengths:
        span = slice(start, start + n)
        pieces.append(torch.nn.functional.scaled_dot_product_attention(
            q[:, :, span].to(dtype), k[:, :, span].to(dtype), v[:, :, span].to(dtype), is_causal=True,
            enable_gqa=True))
        start += n
    return torch.cat(pieces, dim=2).transpose(1, 2)


def output_and_grads(attention, inputs, grad_output):
    for tensor in inputs:
        tensor.grad = None
    output = attention()
    output.backward(grad_output)
    return [output.detach().float()] + [tensor.grad.float() for tensor in inputs]


def assert_as_close_as_sdpa(flash4, sdpa, reference, label):
    """FlashAttention-4's error against fp32 stays within twice SDPA's own bf16 error (plus a little)."""
    for name, got, ours, exact in zip(("out", "dq", "dk", "dv"), flash4, sdpa, reference):
        flash4_error, sdpa_error = (got - exact).abs().max().item(), (ours - exact).abs().max().item()
        print(f"{label} {name}: max |flash4 - fp32| {flash4_error:.5f}, |sdpa bf16 - fp32| {sdpa_error:.5f}, "
              f"|flash4 - sdpa| {(got - ours).abs().max().item():.5f}")
        assert flash4_error <= 2 * sdpa_error + 1e-3, (label, name)
    assert (flash4[0] - sdpa[0]).abs().max().item() < 0.01  # the issue measured 0.004 for the output


def test_fixed_length_causal_rows_match_sdpa():
    q, k, v = qkv(batch=2, length=2048)
    grad_output = torch.randn(2, 2048, HEADS, DIM, device="cuda", dtype=torch.bfloat16)
    before = compiled_kernels()
    started = time.time()
    flash4 = output_and_grads(lambda: flash4_attention(ATTENTION, q, k, v, None)[0], (q, k, v), grad_output)
    print(f"first fixed-length call (compiling forward and backward): {time.time() - started:.1f} s")
    assert compiled_kernels()["_flash_attn_fwd"] > before["_flash_attn_fwd"]  # the kernels ran, not a fallback
    sdpa = output_and_grads(lambda: sdpa_per_example(q, k, v, [2048], torch.bfloat16), (q, k, v), grad_output)
    exact = output_and_grads(lambda: sdpa_per_example(q, k, v, [2048], torch.float32), (q, k, v), grad_output)
    assert_as_close_as_sdpa(flash4, sdpa, exact, "fixed length 2x2048")


def test_padding_free_row_runs_varlen_within_each_example():
    q, k, v = qkv(batch=1, length=sum(LENGTHS), seed=1)
    grad_output = torch.randn(1, sum(LENGTHS), HEADS, DIM, device="cuda", dtype=torch.bfloat16)
    row = positions(LENGTHS)
    before = compiled_kernels()
    flash4 = output_and_grads(lambda: flash4_attention(ATTENTION, q, k, v, None, position_ids=row)[0], (q, k, v),
                              grad_output)
    assert compiled_kernels()["_flash_attn_fwd"] > before["_flash_attn_fwd"]  # varlen is a variant of its own
    sdpa = output_and_grads(lambda: sdpa_per_example(q, k, v, LENGTHS, torch.bfloat16), (q, k, v), grad_output)
    exact = output_and_grads(lambda: sdpa_per_example(q, k, v, LENGTHS, torch.float32), (q, k, v), grad_output)
    assert_as_close_as_sdpa(flash4, sdpa, exact, f"varlen {LENGTHS}")
    with torch.no_grad():
        whole_row = flash4_attention(ATTENTION, q, k, v, None)[0].float()
    assert (whole_row - exact[0]).abs().max().item() > 0.1  # boundaries matter: the check can fail


def test_a_padding_free_row_of_more_than_4096_tokens_runs_the_varlen_kernel_as_exact_as_sdpa(monkeypatch):
    """Long rows stay on the varlen kernel (their slow steps were Liger's RoPE, train/kernels.py), as exact as SDPA."""
    from ftimg_jobs.model import flash4_attention as module

    lengths = [2048, 1500, 900, 1200]
    assert sum(lengths) > 4096
    q, k, v = qkv(batch=1, length=sum(lengths), seed=2)
    grad_output = torch.randn(1, sum(lengths), HEADS, DIM, device="cuda", dtype=torch.bfloat16)
    row = positions(lengths)
    calls = []
    real = module.packed_causal_attention
    monkeypatch.setattr(module, "packed_causal_attention", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    ours = output_and_grads(lambda: flash4_attention(ATTENTION, q, k, v, None, position_ids=row)[0], (q, k, v),
                            grad_output)
    assert calls == []
    sdpa = output_and_grads(lambda: sdpa_per_example(q, k, v, lengths, torch.bfloat16), (q, k, v), grad_output)
    exact = output_and_grads(lambda: sdpa_per_example(q, k, v, lengths, torch.float32), (q, k, v), grad_output)
    assert_as_close_as_sdpa(ours, sdpa, exact, f"long row {lengths}")


def test_new_lengths_reuse_the_compiled_kernels():
    """Varlen rows and fixed-length rows of lengths not seen before compile nothing new."""
    def step(lengths, batch=1):
        q, k, v = qkv(batch=batch, length=sum(lengths), seed=len(lengths))
        row = positions(lengths) if len(lengths) > 1 else None
        flash4_attention(ATTENTION, q, k, v, None, position_ids=row)[0].sum().backward()

    step([300, 1000, 57, 700])
    step([1536], batch=2)
    warm = compiled_kernels()
    for lengths in ([513, 129, 2000, 64, 90], [4000, 96], [129, 130, 131, 132, 133, 134]):
        step(lengths)
    for length in (1000, 3000, 4096):
        step([length], batch=2)
    torch.cuda.synchronize()
    print(f"compiled kernel variants after warm-up {warm}, after 6 new shapes {compiled_kernels()}")
    assert compiled_kernels() == warm


def llama(implementation_switch: bool):
    pytest.importorskip("transformers")
    from ftimg_jobs.model.flash4_attention import NAME, use_flash4_attention

    model = random_llama_on_gpu(hidden_size=1024, num_key_value_heads=2, intermediate_size=2048,
                                max_position_embeddings=4096)
    if implementation_switch:
        assert use_flash4_attention(model) is None and model.config._attn_implementation == NAME
    return model


def test_llama_on_flash4_matches_sdpa_for_rows_packed_rows_and_padded_batches():
    sdpa, flash4 = llama(False), llama(True)
    generator = torch.Generator().manual_seed(1)
    examples = [torch.randint(0, 1000, (n,), generator=generator).cuda() for n in LENGTHS]
    row = torch.cat(examples)[None]
    batch = torch.randint(0, 1000, (2, 700), generator=generator).cuda()
    mask = torch.ones_like(batch)
    mask[0, :200] = 0  # left padding, as inference pads
    with torch.no_grad():
        alone = torch.cat([sdpa(input_ids=ids[None]).logits[0].float() for ids in examples])
        across = sdpa(input_ids=row).logits[0].float()  # one causal sequence: examples see each other
        packed = flash4(input_ids=row, position_ids=positions(LENGTHS)).logits[0].float()
        fixed = (flash4(input_ids=batch).logits.float(), sdpa(input_ids=batch).logits.float())
        padded = (flash4(input_ids=batch, attention_mask=mask).logits[:, 200:].float(),
                  sdpa(input_ids=batch, attention_mask=mask).logits[:, 200:].float())
    leak = (across - alone).abs().max().item()
    errors = {"packed": (packed - alone).abs().max().item(), "fixed": (fixed[0] - fixed[1]).abs().max().item(),
              "padded": (padded[0] - padded[1]).abs().max().item()}
    print(f"max |flash4 - sdpa| logits {errors}; attending across examples differs by {leak:.4f}")
    # bf16 rounding differs between kernels; attending across examples (or to padding) differs by far more.
    assert all(error < 0.1 * leak for error in errors.values()), errors


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    return save_small_llama(tmp_path_factory.mktemp("small-llama"), layers=4)


def run_job(job, output_dir, *flags):
    return run_gpu_job(job, output_dir, *flags, shown=("attention", "global_step", "metrics", "wall_time_s"))


def test_lora_sft_trains_padding_free_rows_on_flash4(small_model, tmp_path):
    data = ENTRYPOINTS / "data/sft/alpaca_zh_en.json"
    run = run_job("lora-sft", tmp_path / "sft", "--model_name_or_path", str(small_model), "--data_path", str(data),
                  "--bf16", "True", "--max_steps", "2", "--logging_steps", "1", "--padding_free", "True",
                  "--per_device_train_batch_size", "8", "--model_max_length", "256")
    reason = run["attention"]["reason"]
    assert run["attention"]["implementation"] == FLASH4 and ("Hopper" in reason or "Blackwell" in reason)
    assert run["speed"]["batches"]["padding_free"] is True
    assert run["global_step"] == 2 and math.isfinite(run["metrics"]["final_logged_loss"])


def test_infer_prefills_on_flash4(small_model, tmp_path):
    output = tmp_path / "infer" / "predictions.jsonl"
    run = run_job("infer", tmp_path / "infer", "--model_name_or_path", str(small_model),
                  "--output_path", str(output), "--max_new_tokens", "16", "--batch_size", "8")
    assert run["attention"]["implementation"] == FLASH4
    prompts = (ENTRYPOINTS / "data/prompts.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(output.read_text(encoding="utf-8").splitlines()) == len(prompts)
