"""How many prompts decode at once: the KV-cache budget left in GPU memory after the model (torch-free).

Decoding a 7B model is bound by memory traffic: every step reads all the weights once,
whatever the batch, so more rows per step means more tokens for the same weight
traffic, until the KV cache (read in full by attention at every step) dominates. The
default batch is therefore as many rows as the free memory holds at the segment's cache
length, up to SLOT_CAP, after setting aside the workspace of prefill and sampling.
"""

from dataclasses import dataclass

# Beyond this many rows a step is bound by reading the KV cache, so more rows add little
# throughput but every row adds latency to its own completion.
SLOT_CAP = 256
# Left free for the allocator's fragmentation, cuBLAS workspaces and captured graphs' pools.
HEADROOM_FRACTION = 0.06
HEADROOM_MIN_BYTES = 1 << 30
# Prompt tokens prefilled in one forward call (long prompts go alone); bounds prefill activations.
PREFILL_TOKENS = 16384


@dataclass(frozen=True)
class ModelShape:
    """What the KV cache and the activations of a decoder-only model take per token."""

    layers: int
    kv_heads: int
    head_dim: int
    hidden: int
    intermediate: int
    vocab: int
    dtype_bytes: int

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes


def workspace_bytes(shape: ModelShape, longest_prompt: int, slots: int = SLOT_CAP) -> int:
    """Transient memory next to the cache: one prefill call's activations and the sampling buffers.

    Prefill holds a few hidden-size tensors (residual, normed input, q/k/v, attention output)
    and the MLP's gate, up and product at once; sampling holds float32 logits and their
    sorted copy for top-p. A prompt longer than PREFILL_TOKENS is prefilled alone.
    """
    prefill_tokens = max(PREFILL_TOKENS, longest_prompt)
    per_prefill_token = (8 * shape.hidden + 3 * shape.intermediate) * shape.dtype_bytes
    # No attention mask: prefill runs SDPA's causal kernel, which materialises no width x width scores.
    return prefill_tokens * per_prefill_token + 4 * slots * shape.vocab * 4


def slots_that_fit(free_bytes: int, cache_length: int, longest_prompt: int, shape: ModelShape,
                   cap: int = SLOT_CAP) -> int:
    """Rows of `cache_length` columns that fit in `free_bytes` (0 when not even one does)."""
    headroom = max(HEADROOM_MIN_BYTES, int(free_bytes * HEADROOM_FRACTION))
    usable = free_bytes - headroom - workspace_bytes(shape, longest_prompt)
    rows = usable // (cache_length * shape.kv_bytes_per_token) if usable > 0 else 0
    rows = min(int(rows), cap)
    return rows - rows % 8 if rows >= 8 else rows


def cache_gib(rows: int, cache_length: int, shape: ModelShape) -> float:
    return rows * cache_length * shape.kv_bytes_per_token / 2 ** 30
