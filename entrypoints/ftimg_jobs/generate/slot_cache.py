"""A static KV cache whose rows are independent slots: each row writes at its own column.

transformers' StaticCache keeps one write position for the whole batch (every row at
the same column), which is what lets `model.generate` compile it, but it means a row
cannot be refilled with a new prompt while the others keep decoding. This cache keeps
the same fixed tensors (so a decode step can be captured as a CUDA graph) and lets
each slot write at its own column:

- prefill: `write_rows` names the slots a right-padded batch of new prompts fills; their
  keys/values land in columns [0, width) of those rows, and attention sees just them. The
  cache then reports itself empty and as long as the batch, so transformers builds no mask
  and SDPA runs its causal kernel (flash attention in bf16/fp16);
- decode: every slot writes its one new key/value at `positions[slot]` and attention
  reads all columns, the 4D mask built by the engine hiding the ones the slot does not own
  (a row's own padding from prefill, past its position, included).

The model sees an ordinary transformers `Cache`: its attention calls `update()`.
"""

from typing import List, Optional

import torch
from transformers.cache_utils import Cache, CacheLayerMixin


class SlotLayer(CacheLayerMixin):
    """One decoder layer's keys and values, shape (slots, kv_heads, cache_length, head_dim)."""

    is_compileable = True
    is_sliding = False

    def __init__(self, keys: torch.Tensor, values: torch.Tensor):
        super().__init__()
        self.keys, self.values = keys, values
        self.is_initialized = True

    def lazy_initialization(self, key_states, value_states) -> None:
        """Allocated up front: the captured graphs hold these exact tensors."""

    def update(self, key_states, value_states, *args, **kwargs):
        raise NotImplementedError("SlotCache.update writes the layers")

    def get_mask_sizes(self, query_length: int):
        return self.keys.shape[2], 0

    def get_seq_length(self) -> int:
        raise NotImplementedError("slots have their own lengths; the engine passes position_ids and a 4D mask")

    def get_max_length(self) -> int:
        return self.keys.shape[2]


class SlotCache(Cache):
    """Keys/values of `slots` rows by `cache_length` columns for every layer of a model."""

    def __init__(self, layers: List[SlotLayer], positions: torch.Tensor):
        super().__init__(layers=layers)
        self.positions = positions  # (slots,) column each slot writes at the next decode step
        self.write_rows: Optional[torch.Tensor] = None  # set during prefill: the slots being filled

    @classmethod
    def allocate(cls, num_layers: int, slots: int, kv_heads: int, cache_length: int, head_dim: int,
                 dtype: torch.dtype, device) -> "SlotCache":
        # Zeros, not empty: masked-out columns are still multiplied by a zero weight in attention,
        # and uninitialised memory may hold NaN, which would survive that product.
        shape = (slots, kv_heads, cache_length, head_dim)
        layers = [SlotLayer(torch.zeros(shape, dtype=dtype, device=device), torch.zeros(shape, dtype=dtype, device=device))
                  for _ in range(num_layers)]
        return cls(layers, torch.zeros(slots, dtype=torch.long, device=device))

    def first_rows(self, rows: int) -> "SlotCache":
        """A cache over the first `rows` slots, sharing this one's memory (for a smaller graph)."""
        layers = [SlotLayer(layer.keys[:rows], layer.values[:rows]) for layer in self.layers]
        return SlotCache(layers, self.positions[:rows])

    def move_rows(self, sources: torch.Tensor) -> None:
        """Slot i takes the keys/values of slot sources[i], for i < len(sources) (compaction)."""
        count = sources.numel()
        for layer in self.layers:
            layer.keys[:count] = layer.keys.index_select(0, sources)
            layer.values[:count] = layer.values.index_select(0, sources)

    @property
    def slots(self) -> int:
        return self.layers[0].keys.shape[0]

    @property
    def cache_length(self) -> int:
        return self.layers[0].keys.shape[2]

    def update(self, key_states, value_states, layer_idx: int, *args, **kwargs):
        layer = self.layers[layer_idx]
        if self.write_rows is not None:
            width = key_states.shape[2]
            layer.keys[:, :, :width].index_copy_(0, self.write_rows, key_states)
            layer.values[:, :, :width].index_copy_(0, self.write_rows, value_states)
            return key_states, value_states
        # One new token per slot, written at the slot's own column (scatter keeps it graph-capturable).
        index = self.positions.view(-1, 1, 1, 1).expand(-1, key_states.shape[1], 1, key_states.shape[3])
        layer.keys.scatter_(2, index, key_states)
        layer.values.scatter_(2, index, value_states)
        return layer.keys, layer.values

    def get_seq_length(self, layer_idx: int = 0) -> int:
        if self.write_rows is not None:
            return 0  # prefill: the new prompts see none of the cache, only themselves
        raise NotImplementedError("slots have their own lengths; the engine passes position_ids and a 4D mask")

    def get_mask_sizes(self, query_length: int, layer_idx: int = 0):
        if self.write_rows is not None:
            return query_length, 0  # prefill attends over the new tokens alone (update returns just them)
        return super().get_mask_sizes(query_length, layer_idx)
