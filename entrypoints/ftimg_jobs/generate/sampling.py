"""Choosing the next token on the GPU, inside the captured decode step.

Every operation here has a fixed shape and no host synchronisation, so it can live
in a CUDA graph: greedy is an argmax; sampling draws with the exponential race
(argmax of p / E with E ~ Exp(1), the same distribution as torch.multinomial but
without its host-side checks) from the default generator, which CUDA graphs advance
on every replay, so a seeded run is reproducible. The filters follow transformers'
processors: repetition penalty (divide positive logits, multiply negative ones, of
tokens already in the prompt or output), temperature, top-k, then top-p.
"""

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass(frozen=True)
class SamplingSettings:
    do_sample: bool = False
    temperature: float = 1.0
    top_k: Optional[int] = None
    top_p: Optional[float] = None
    repetition_penalty: float = 1.0

    @property
    def tracks_seen_tokens(self) -> bool:
        return self.repetition_penalty != 1.0


def penalize_repeats(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    penalized = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalized, logits)


def filter_top_k(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def filter_top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability reaches `top_p` (at least one)."""
    ordered, order = torch.sort(logits, dim=-1, descending=True)
    probabilities = ordered.softmax(dim=-1)
    before = probabilities.cumsum(dim=-1) - probabilities  # mass of the tokens ranked above
    drop_sorted = before > top_p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def next_tokens(logits: torch.Tensor, settings: SamplingSettings, seen: Optional[torch.Tensor]) -> torch.Tensor:
    """One token id per row of `logits` (rows, vocab)."""
    logits = logits.float()
    if settings.tracks_seen_tokens:
        logits = penalize_repeats(logits, seen, settings.repetition_penalty)
    if not settings.do_sample:
        return logits.argmax(dim=-1)
    logits = logits / settings.temperature
    if settings.top_k:
        logits = filter_top_k(logits, settings.top_k)
    if settings.top_p is not None and settings.top_p < 1.0:
        logits = filter_top_p(logits, settings.top_p)
    probabilities = logits.softmax(dim=-1)
    race = torch.empty_like(probabilities).exponential_()
    return (probabilities / race).argmax(dim=-1)


def mark_seen(seen: torch.Tensor, tokens: torch.Tensor) -> None:
    """Record `tokens` (rows,) or (rows, width) as seen by their rows."""
    seen.scatter_(1, tokens.view(tokens.shape[0], -1), True)
