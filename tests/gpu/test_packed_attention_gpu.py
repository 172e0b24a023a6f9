"""Padding-free rows on the GPU: per-example attention (packed_attention.py) in bf16 with SDPA's
flash kernel gives each example what it gets alone, at the kernel and through a whole Llama model.

    PYTHONPATH=entrypoints python -m pytest -m gpu tests/gpu/test_packed_attention_gpu.py -v
"""

import pytest
from gpu_jobs import random_llama_on_gpu

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

LENGTHS = [300, 1000, 57, 700]  # a padding-free row of four examples, as the collator packs them


def separate_attention(q, k, v, lengths):
    """The reference: causal attention of each example on its own, in float32."""
    groups = q.shape[1] // k.shape[1]
    pieces, start = [], 0
    for n in lengths:
        span = slice(start, start + n)
        pieces.append(torch.nn.functional.scaled_dot_product_attention(
            q[:, :, span].float(), k[:, :, span].float().repeat_interleave(groups, dim=1),
            v[:, :, span].float().repeat_interleave(groups, dim=1), is_causal=True))
        start += n
    return torch.cat(pieces, dim=2).transpose(1, 2)


def positions(lengths):
    return torch.tensor([[p for n in lengths for p in range(n)]], device="cuda")


def test_kernel_matches_each_example_alone_in_bf16():
    from ftimg_jobs.model.packed_attention import packed_causal_attention

    torch.manual_seed(0)
    total = sum(LENGTHS)
    q = torch.randn(1, 32, total, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(1, 8, total, 128, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(1, 8, total, 128, device="cuda", dtype=torch.bfloat16)
    packed, _ = packed_causal_attention(None, q, k, v, None, position_ids=positions(LENGTHS))
    expected = separate_attention(q, k, v, LENGTHS)
    assert packed.shape == (1, total, 32, 128) and packed.dtype == torch.bfloat16
    assert (packed.float() - expected).abs().max().item() < 2e-2
    whole_row, _ = packed_causal_attention(None, q, k, v, None, position_ids=None)
    assert (whole_row.float() - expected).abs().max().item() > 0.1  # boundaries matter: the check can fail


def test_llama_logits_of_a_packed_row_equal_each_example_run_alone():
    transformers = pytest.importorskip("transformers")
    from ftimg_jobs.model.packed_attention import NAME, use_packed_attention

    model = random_llama_on_gpu(hidden_size=512, num_key_value_heads=4, intermediate_size=1024,
                                max_position_embeddings=2048)
    generator = torch.Generator().manual_seed(1)
    examples = [torch.randint(0, 1000, (n,), generator=generator).cuda() for n in LENGTHS]
    row = torch.cat(examples)[None]
    with torch.no_grad():
        alone = torch.cat([model(input_ids=ids[None]).logits[0].float() for ids in examples])
        across = model(input_ids=row).logits[0].float()  # one causal sequence: examples see each other
        if not use_packed_attention(model):
            pytest.skip(f"transformers {transformers.__version__} has no attention registry")
        assert model.config._attn_implementation == NAME
        packed = model(input_ids=row, position_ids=positions(LENGTHS)).logits[0].float()
    error, leak = (packed - alone).abs().max().item(), (across - alone).abs().max().item()
    print(f"max |packed - alone| = {error:.4f}, max |one sequence - alone| = {leak:.4f}, "
          f"logit scale {alone.abs().max().item():.3f}")
    assert packed.shape == alone.shape
    # bf16 rounding differs between one long call and four short ones; attending across
    # examples (or the wrong positions) differs by far more.
    assert error < 0.1 * leak
