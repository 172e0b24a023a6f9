"""Causal attention over a padding-free row, one example at a time, with SDPA's flash kernel.

transformers (4.53+) turns restarting position ids into a dense block-causal
mask for SDPA; with a mask SDPA leaves its flash kernel for a slower one and
attends over the whole row, (sum of lengths)^2 instead of the sum of
lengths^2. Registered as its own attention implementation, this function gets
no mask (transformers builds none for implementations it does not know) and
runs causal SDPA on each example's slice instead. cuDNN's SDPA backend is left
out: it builds an execution plan for every new sequence length, and here every
example has a new one.
"""

import contextlib

import torch
import torch.nn.functional as F

from ftimg_jobs.data.packing import segment_bounds

NAME = "ftimg_packed_sdpa"

# The same position ids reach every layer of one forward pass (and its recompute under gradient
# checkpointing): read their boundaries once. Shared with flash4_attention.py's varlen kernel.
_bounds_cache = {"position_ids": None, "bounds": None, "cu_seqlens": None}


def without_cudnn():
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:
        return contextlib.nullcontext()
    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def row_bounds(position_ids, length: int) -> list:
    if position_ids is None:
        return [(0, length)]
    if _bounds_cache["position_ids"] is not position_ids:
        _bounds_cache.update(position_ids=position_ids, bounds=segment_bounds(position_ids[0].tolist()),
                             cu_seqlens=None)
    return _bounds_cache["bounds"]


def row_cu_seqlens(position_ids, length: int) -> tuple:
    """``(cu_seqlens, longest)`` of a padding-free row, as varlen kernels take them.

    ``cu_seqlens`` is int32 on the row's device: 0, then each example's end. ``longest``
    stays a Python int, so the kernel never reads it back from the GPU.
    """
    bounds = row_bounds(position_ids, length)
    if _bounds_cache["cu_seqlens"] is None:
        ends = [0] + [end for _, end in bounds]
        _bounds_cache["cu_seqlens"] = (torch.tensor(ends, dtype=torch.int32, device=position_ids.device),
                                       max(end - start for start, end in bounds))
    return _bounds_cache["cu_seqlens"]


def packed_causal_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                            position_ids=None, **_kwargs):
    """query ``(1, heads, L, dim)``, key/value ``(1, kv_heads, L, dim)`` -> ``((1, L, heads, dim), None)``."""
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    if attention_mask is not None or query.shape[0] != 1 or query.shape[2] != key.shape[2]:
        output = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=dropout,
                                                is_causal=attention_mask is None and query.shape[2] > 1,
                                                scale=scaling)
        return output.transpose(1, 2).contiguous(), None
    with without_cudnn():
        pieces = [F.scaled_dot_product_attention(query[:, :, start:end], key[:, :, start:end],
                                                 value[:, :, start:end], dropout_p=dropout, is_causal=True,
                                                 scale=scaling)
                  for start, end in row_bounds(position_ids, query.shape[2])]
    output = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=2)
    return output.transpose(1, 2).contiguous(), None


def use_packed_attention(model) -> bool:
    """Switch an SDPA model to per-example attention; False where transformers has no attention registry."""
    try:
        from transformers import AttentionInterface
    except ImportError:
        return False
    AttentionInterface.register(NAME, packed_causal_attention)
    model.config._attn_implementation = NAME
    return True
