"""How a training step's examples are laid out: padding-free rows, or padded batches; real-token counts."""

import logging

import torch

from ftimg_jobs.data.packing import flatten_examples, real_token_count
from ftimg_jobs.model.attention import FLASH

log = logging.getLogger("ftimg_jobs")


def padding_free_unavailable_reason(attention_implementation: str):
    if attention_implementation == FLASH or attention_implementation.startswith("sdpa, one causal call"):
        return None
    try:
        from transformers.masking_utils import find_packed_sequence_indices  # noqa: F401
    except ImportError:
        import transformers

        return (f"transformers {transformers.__version__} with {attention_implementation} attention would let "
                "packed examples attend to each other (needs flash-attn 2 or transformers 4.53+)")
    return None


class PaddingFreeCollator:
    """One row per batch, examples end to end, no attention mask: see packing.py."""

    def __call__(self, features):
        row = flatten_examples(features)
        return {key: torch.tensor([values], dtype=torch.long) for key, values in row.items()}


class CountingCollator:
    """Wraps a collator and queues each batch's real (non-padding) token count for ThroughputCallback."""

    def __init__(self, collator):
        self.collator = collator
        self.token_counts = []

    def __call__(self, features):
        self.token_counts.append(real_token_count(features))
        return self.collator(features)


def choose_collator(pad_collator, speed_args, attention: dict) -> tuple:
    """``(collator, note)``: padding-free when the attention kernel keeps examples apart, else ``pad_collator``."""
    if not speed_args.padding_free:
        return pad_collator, {"padding_free": False, "reason": "--padding_free False"}
    reason = padding_free_unavailable_reason(attention["implementation"])
    if reason:
        log.info("padding-free batches skipped: %s; padding each batch to its longest example", reason)
        return pad_collator, {"padding_free": False, "reason": reason}
    return PaddingFreeCollator(), {"padding_free": True, "reason": f"{attention['implementation']} attention "
                                                                   "separates examples by position ids"}
