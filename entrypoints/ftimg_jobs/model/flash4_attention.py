"""FlashAttention-4 (flash-attn-4's CuTe DSL kernels for Hopper and Blackwell) as a transformers attention function.

Measured on an H200 (issue 15), causal forward + backward, bf16, 32 heads of 128: at 4,096 tokens
0.98 ms, against 1.13 ms for SDPA's cuDNN backend and 2.02 ms for its flash backend; over a
padding-free row of 8 examples (50-2,048 tokens) one varlen call took 1.32 ms, against 5.13 ms
for one SDPA call per example (packed_attention.py).

Registered under its own name rather than as transformers 5's built-in "flash_attention_4": that
one finds a padding-free row's examples again in every layer, with two host synchronisations each,
and passes their longest length as a GPU tensor. Here the boundaries are read once per forward pass
(packed_attention's cache) and the longest length is a Python int.

Where each call runs (the model is loaded as SDPA, then switched to this function):
- no mask and as many queries as keys (training rows, prefill): FlashAttention-4, causal. A row
  whose position ids restart (a padding-free row) runs the varlen kernel over its examples, other
  rows the fixed-length kernel.
- a decode step of the static infer engine (generate/static_engine.py), which passes each row's count
  of cache columns as ``slot_lengths``: the varlen kernel with ``seqused_k``, so a row reads only its
  own columns of the cache rather than all of them under a mask.
- a padded batch, other decoding against a cache, a non-causal module: transformers' own SDPA function with
  the mask transformers' sdpa_mask builds, exactly as attn_implementation="sdpa" runs them. A padded
  batch never reaches the fixed-length kernel, which would attend to its padding.
- queries off the GPU, or not in fp16/bf16 outside autocast: packed_attention's per-example SDPA.

Compilation: each kernel variant compiles on its first call (about 8 s for forward and backward on
an H200), in-process only unless FLASH_ATTENTION_CUTE_DSL_CACHE_ENABLED=1. Sequence lengths are not
part of a variant: new lengths reuse the compiled kernels (tests/gpu/test_flash4_gpu.py checks it).
A few length classes select a variant of their own, compiled once each: rows whose longest example
fits one 128-row tile (counted in query heads per key head), and on Blackwell whether that tile is
staged once or twice.
"""

import importlib.metadata
import logging
from typing import Optional

import torch

from ftimg_jobs.generate.engine_choice import uses_sliding_window
from ftimg_jobs.model.attention import flash4_model_problem
from ftimg_jobs.model.packed_attention import packed_causal_attention, row_bounds, row_cu_seqlens

log = logging.getLogger("ftimg_jobs")

NAME = "ftimg_flash_attention_4"
HALF = (torch.float16, torch.bfloat16)
# The keyword a decode step passes through the model to its attention: (rows,) int32, the cache
# columns each row sees (its tokens sit at columns 0..count-1).
SLOT_LENGTHS = "slot_lengths"


def distribution_installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def install_problem() -> Optional[str]:
    """Why this stack cannot run FlashAttention-4 at all (None: the package and transformers can)."""
    problems = []
    if not distribution_installed("flash-attn-4"):
        problems.append("the flash-attn-4 package is not installed (the cu130-torch2.11 image has it)")
    try:
        from transformers import AttentionInterface  # noqa: F401
        from transformers.masking_utils import AttentionMaskInterface  # noqa: F401
    except ImportError:
        import transformers

        problems.append(f"transformers {transformers.__version__} cannot take an attention function of its own "
                        "(AttentionInterface and masking_utils: transformers 4.53+)")
    return "; ".join(problems) or None


def import_problem() -> Optional[str]:
    """Why ``flash_attn.cute`` does not import (None: it does). Loads the CuTe DSL: call it on a GPU machine."""
    try:
        import flash_attn.cute  # noqa: F401
    except Exception as error:  # the DSL's loader raises more than ImportError (OSError, RuntimeError)
        return f"flash_attn.cute does not import ({type(error).__name__}: {error})"
    return None


def flash4_problem(gpu_could_run_it: bool) -> Optional[str]:
    """For AttentionProbe.flash4_problem: the import is only tried where the GPU could run the kernels."""
    return install_problem() or (import_problem() if gpu_could_run_it else None)


def compute_dtype(query):
    """The fp16/bf16 dtype FlashAttention-4 runs this call in, or None when there is none."""
    if query.dtype in HALF:
        return query.dtype
    # Full fine-tuning keeps fp32 weights under autocast: RoPE hands back fp32 queries that SDPA
    # would cast to the autocast dtype, as done here.
    if torch.is_autocast_enabled(query.device.type):
        dtype = torch.get_autocast_dtype(query.device.type)
        return dtype if dtype in HALF else None
    return None


def flash4_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                     position_ids=None, **kwargs):
    """query ``(batch, heads, L, dim)``, key/value ``(batch, kv_heads, L, dim)`` -> ``((batch, L, heads, dim), None)``.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if kwargs.get("sliding_window") is not None:
        raise ValueError(f"{NAME} got a sliding-window layer; models with one are refused at load time. "
                         "Use --attn_implementation sdpa")
    slot_lengths = kwargs.pop(SLOT_LENGTHS, None)
    if slot_lengths is not None:
        return flash4_slot_decode(module, query, key, value, slot_lengths, scaling)
    is_causal = kwargs.pop("is_causal", None)
    is_causal = getattr(module, "is_causal", True) if is_causal is None else is_causal
    if attention_mask is not None or query.shape[2] != key.shape[2] or not is_causal:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    dtype = compute_dtype(query)
    if dtype is None or dropout or not query.is_cuda:
        return packed_causal_attention(module, query, key, value, None, dropout=dropout, scaling=scaling,
                                       position_ids=position_ids)
    from flash_attn.cute import flash_attn_func, flash_attn_varlen_func

    # The kernels take (batch, L, heads, dim) with any strides whose last one is 1: no copies.
    query, key, value = (tensor.transpose(1, 2).to(dtype) for tensor in (query, key, value))
    length = query.shape[1]
    if query.shape[0] == 1 and len(row_bounds(position_ids, length)) > 1:
        cu_seqlens, longest = row_cu_seqlens(position_ids, length)
        output, _ = flash_attn_varlen_func(query[0], key[0], value[0], cu_seqlens_q=cu_seqlens,
                                           cu_seqlens_k=cu_seqlens, max_seqlen_q=longest, max_seqlen_k=longest,
                                           softmax_scale=scaling, causal=True)
        return output.unsqueeze(0), None
    output, _ = flash_attn_func(query, key, value, softmax_scale=scaling, causal=True)
    return output, None


def flash4_slot_decode(module, query, key, value, lengths, scaling):
    """One query per row against its own first ``lengths[row]`` columns of a static cache.

    query ``(rows, heads, 1, dim)``, key/value the whole cache ``(rows, kv_heads, columns, dim)``;
    returns ``((rows, 1, heads, dim), None)``. The transposed views are what the kernel takes
    (last stride 1, 16-byte aligned strides), so the cache is not copied; the kernel launch is
    capturable in a CUDA graph, which then follows ``lengths`` as the step advances them.
    Off the GPU or outside fp16/bf16, SDPA computes the same under a mask made from ``lengths``.
    """
    if not query.is_cuda or query.dtype not in HALF or key.dtype != query.dtype:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        columns = torch.arange(key.shape[2], device=key.device)
        mask = (columns[None, :] < lengths[:, None])[:, None, None]
        return sdpa_attention_forward(module, query, key, value, mask, scaling=scaling, is_causal=False)
    from flash_attn.cute import flash_attn_varlen_func

    output, _ = flash_attn_varlen_func(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2),
                                       seqused_k=lengths, softmax_scale=scaling, causal=False)
    return output, None


def flash4_mask(batch_size: int, q_length: int, kv_length: int, q_offset=0, kv_offset=0, attention_mask=None,
                allow_is_causal_skip: bool = True, **kwargs):
    """The mask transformers builds for a forward pass: None where FlashAttention-4 runs it, else SDPA's own.

    None needs no padding, as many queries as keys and no cache offset. transformers clears
    ``allow_is_causal_skip`` when it found packed rows or overlays a mask of its own: of those,
    one row (the padding-free collator's) runs varlen from its position ids; several rows get
    SDPA's mask, since the varlen path here reads the boundaries of a single row.
    """
    from transformers.masking_utils import sdpa_mask

    no_padding = attention_mask is None or (attention_mask.shape[-1] == kv_length and bool(attention_mask.all()))
    fresh = (q_length == kv_length and isinstance(q_offset, int) and q_offset == 0
             and isinstance(kv_offset, int) and kv_offset == 0)
    if no_padding and fresh and (allow_is_causal_skip or batch_size == 1):
        return None
    return sdpa_mask(batch_size=batch_size, q_length=q_length, kv_length=kv_length, q_offset=q_offset,
                     kv_offset=kv_offset, attention_mask=attention_mask, allow_is_causal_skip=allow_is_causal_skip,
                     **kwargs)


def model_problem(config, capability: tuple) -> Optional[str]:
    """Why this model's attention is not one FlashAttention-4 runs here (None: it is)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    return flash4_model_problem(head_dim, capability, uses_sliding_window(text),
                                getattr(text, "attention_dropout", 0.0) or 0.0)


def register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, flash4_attention)
    AttentionMaskInterface.register(NAME, flash4_mask)


def use_flash4_attention(model) -> Optional[str]:
    """Switch a model loaded with SDPA to FlashAttention-4; returns why not (None when switched)."""
    problem = model_problem(model.config, tuple(torch.cuda.get_device_capability()))
    if problem:
        return problem
    register()
    model.config._attn_implementation = NAME
    return None
