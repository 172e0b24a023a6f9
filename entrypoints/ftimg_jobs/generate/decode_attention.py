"""How a captured decode step's attention reads the static KV cache: the engine's choice of kernel.

Row r of a segment's cache holds its tokens at columns 0..positions[r] (the prompt from column 0,
then one generated token a step); the columns after that are padding or free. Three ways to read it:

- "mask": SDPA over the segment's whole cache with a boolean mask. Every row reads all
  `cache_length` columns, while its own context is shorter: measured on an H200 with a 7B model
  at 256 rows, every 64 cache columns cost ~1.8 ms a step, and a row's context was 44-73% of
  the columns it read (docs/performance.md, infer).
- "flash4": FlashAttention-4's varlen kernel, told each row's column count (`seqused_k`), reads
  only those columns. The model must already run FlashAttention-4 (model/flash4_attention.py,
  where the call is made): the kernel compiles once per process, or loads from the kernel cache.
  Measured on an H200 (same case, alternating with "mask"): 1% less decode time, not the ~40% of
  attention the columns it skips promised: on Hopper the kernel computes 128 query rows per tile
  for the one a decode step has, so it is about as compute-bound as the mask is bandwidth-bound.
- "flex": FlexAttention's decoding kernel under a BlockMask made inside the captured step from
  the positions: each row's KV blocks run up to the block holding its own position. It compiles
  once per shape (rows x cache length): measured on an H200 (issue 12's 1,024 prompts), decode
  11.7 s against 13.4 s, but the four compiles took 19.9 s of the process's first run, so it is
  never chosen by "auto".

"auto" takes "flash4" where the model runs FlashAttention-4 on the GPU, else "mask". Off the GPU,
"flash4" runs the same attention through SDPA under a mask made from the column counts (a check of
what the step passes, for tests on a CPU).
"""

from typing import Optional

import torch

DECODE_ATTENTIONS = ("auto", "mask", "flash4", "flex")
# Columns per KV block: a row reads at most this many columns past its position.
KV_BLOCK = 64
# FlexAttention's query block; a decode step has one query per row, so one block.
Q_BLOCK = 128

_compiled = {"flex_attention": None}


def flex_problem(model) -> Optional[str]:
    """Why FlexAttention's decoding cannot run this model here (None: it can)."""
    try:
        from torch.nn.attention.flex_attention import BlockMask
    except ImportError:
        return f"torch {torch.__version__} has no FlexAttention (torch 2.5+)"
    import inspect

    if "compute_q_blocks" not in inspect.signature(BlockMask.from_kv_blocks).parameters:
        return f"torch {torch.__version__}'s BlockMask cannot leave out the backward's blocks (torch 2.6+)"
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    implementation = model.config._attn_implementation
    if implementation not in ALL_ATTENTION_FUNCTIONS:
        return (f"prefill would need the model's own {implementation!r} attention, which is not in "
                "transformers' registry")
    return None


def choose_decode_attention(requested: str, model, device) -> str:
    """The decode attention a StaticEngine runs: `requested` (checked), or for "auto" flash4 where it can run."""
    from ftimg_jobs.model.flash4_attention import NAME as FLASH4

    if requested not in DECODE_ATTENTIONS:
        raise ValueError(f"decode_attention {requested!r} is not one of {', '.join(DECODE_ATTENTIONS)}")
    on_flash4 = model.config._attn_implementation == FLASH4
    if requested == "auto":
        return "flash4" if on_flash4 and device.type == "cuda" else "mask"
    if requested == "flash4" and not on_flash4:
        raise ValueError(f"decode_attention 'flash4' needs a model running {FLASH4} (model/flash4_attention.py); "
                         f"this one runs {model.config._attn_implementation!r}")
    problem = flex_problem(model) if requested == "flex" else None
    if problem:
        raise ValueError(f"decode_attention 'flex': {problem}")
    return requested


def compiled_flex_attention():
    if _compiled["flex_attention"] is None:
        from torch.nn.attention.flex_attention import flex_attention

        # One compile per decode shape; without the compiler flex_attention runs its reference
        # implementation, which reads and writes a full score matrix.
        _compiled["flex_attention"] = torch.compile(flex_attention, dynamic=False)
    return _compiled["flex_attention"]


class SlotBlocks:
    """A decode graph's BlockMask maker: row r sees columns 0..positions[r] of the cache.

    The mask function is made once, over the graph's own view of the slots' positions,
    so every step hands the compiled kernel the same function (a new closure each step would be a
    new guard) and a replayed graph reads the positions as they are then.
    """

    def __init__(self, positions: torch.Tensor, cache_length: int):
        if cache_length % KV_BLOCK:
            raise ValueError(f"cache length {cache_length} is not a multiple of {KV_BLOCK}")
        rows, blocks = positions.shape[0], cache_length // KV_BLOCK
        self.positions, self.cache_length = positions, cache_length
        # Every row lists all blocks in order; its count of blocks (set each step) says how many it reads.
        self.indices = torch.arange(blocks, dtype=torch.int32, device=positions.device).view(1, 1, 1, blocks)
        self.indices = self.indices.expand(rows, 1, 1, blocks).contiguous()

        def visible(batch, _head, _query, column):
            return column <= positions[batch]

        self.visible = visible

    def mask(self):
        from torch.nn.attention.flex_attention import BlockMask

        counts = torch.div(self.positions, KV_BLOCK, rounding_mode="floor").add(1).to(torch.int32).view(-1, 1, 1)
        return BlockMask.from_kv_blocks(counts, self.indices, BLOCK_SIZE=(Q_BLOCK, KV_BLOCK), mask_mod=self.visible,
                                        seq_lengths=(1, self.cache_length), compute_q_blocks=False)


def registered_name(previous: str) -> str:
    return f"ftimg_slot_decode_over_{previous}"


def register_over(previous: str) -> str:
    """Register decode attention that falls back to the attention function named `previous`; returns its name."""
    from torch.nn.attention.flex_attention import BlockMask
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    fallback = ALL_ATTENTION_FUNCTIONS[previous]

    def slot_decode_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        """query ``(rows, heads, 1, dim)`` against the whole cache ``(rows, kv_heads, columns, dim)``."""
        if not isinstance(attention_mask, BlockMask):
            return fallback(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
        output = compiled_flex_attention()(query, key, value, block_mask=attention_mask, scale=scaling,
                                           enable_gqa=query.shape[1] != key.shape[1])
        return output.transpose(1, 2).contiguous(), None

    name = registered_name(previous)
    AttentionInterface.register(name, slot_decode_attention)
    AttentionMaskInterface.register(name, ALL_MASK_ATTENTION_FUNCTIONS[previous])
    return name


class DecodeAttention:
    """Switches a model to the slot decode attention while the engine runs (a context manager)."""

    def __init__(self, model):
        self.model = model
        self.previous = model.config._attn_implementation

    def __enter__(self):
        self.model.config._attn_implementation = register_over(self.previous)
        return self

    def __exit__(self, *_exc):
        self.model.config._attn_implementation = self.previous
