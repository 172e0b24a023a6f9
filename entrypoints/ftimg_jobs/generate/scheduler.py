"""Which prompts decode together, in which shapes, and when to refill or shrink (torch-free).

The static engine decodes through CUDA graphs, and a graph is captured for one shape:
a number of slots (rows) and a KV-cache length (columns). Attention reads every
column of the cache at every step, so the cache should be no longer than the
longest prompt it serves plus the tokens to generate; and each distinct shape costs
a capture, so there should be few of them. The plan therefore:

- sorts prompts longest first (the largest cache comes first: running out of memory
  shows at once, not hours in);
- takes them a *wave* at a time, as many as memory holds at the cache length the
  wave's longest prompt needs (rounded up to a bucket), so every wave is a full batch;
- lets consecutive waves of the same cache length share a *segment* (one cache, one
  graph), and evens out the last wave so it is not a nearly empty batch.

Within a segment the engine decodes continuously: a slot whose prompt finished (EOS,
stop string, token budget) is refilled with the next waiting prompt. Refilling costs a
prefill call, whose fixed cost is several decode steps on a launch-bound host, so it is
done once enough slots are free (`refill_count`). When nothing is waiting and few rows
are left, the rows move into the first half of the slots and a smaller graph decodes
them (`shrink_to`), where the remaining steps repay the capture.
"""

import math
from dataclasses import dataclass
from typing import Callable, Dict, Hashable, List, Optional, Sequence, Tuple

from ftimg_jobs.generate.batching import sort_longest_first

# Cache lengths are multiples of this many tokens: coarse enough for few captures, fine
# enough that a prompt's cache is at most this much longer than it needs.
# Measured on an H200 with a 7B model: capturing a graph takes ~0.3 s, and at 256 rows
# every 64 cache columns cost ~1.8 ms a step.
CACHE_LENGTH_BUCKET = 64
# More segments than this would spend more on captures than shorter caches save.
MAX_SEGMENTS = 12
# Slot counts are multiples of this (tensor-core friendly row counts).
SLOT_MULTIPLE = 8
# Refill once this fraction of the slots is free (or every waiting prompt fits).
REFILL_FRACTION = 1 / 8
# Shrink only when the rows left still have at least this many steps to go.
SHRINK_MIN_STEPS = 32


@dataclass(frozen=True)
class Segment:
    """Prompts decoded with one KV cache: `slots` rows of `cache_length` columns."""

    cache_length: int
    slots: int
    ids: Tuple[Hashable, ...]


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def cache_length_for(prompt_length: int, max_new_tokens: int, bucket: int = CACHE_LENGTH_BUCKET) -> int:
    """Columns a prompt needs: itself plus every token it may generate, rounded up to the bucket."""
    return round_up(prompt_length + max_new_tokens, bucket)


def even_slots(count: int, most: int) -> int:
    """Slots for `count` prompts when at most `most` fit: as many waves as needed, each as full as possible."""
    if most < 1:
        raise ValueError(f"at least one slot must fit, got {most}")
    waves = math.ceil(count / most)
    slots = round_up(math.ceil(count / waves), SLOT_MULTIPLE)
    return max(1, min(slots, most))


def plan_segments(ids: Sequence[Hashable], lengths: Dict[Hashable, int], max_new_tokens: int,
                  slots_at: Callable[[int], int], bucket: int = CACHE_LENGTH_BUCKET,
                  max_segments: int = MAX_SEGMENTS) -> List[Segment]:
    """Cut `ids` (any order) into segments, longest prompts first.

    The sorted prompts are taken a wave at a time (as many as fit in memory at the cache
    length the wave's longest prompt needs); consecutive waves that need the same cache
    length share a segment. Every wave is therefore full except the very last, which is
    evened out with its segment. `slots_at(cache_length)` is how many rows fit in memory
    at that cache length (memory.py); it must be at least 1 for the longest prompt.
    """
    if not ids:
        return []
    ordered = sort_longest_first(ids, lengths)
    groups: List[Tuple[int, int, List[Hashable]]] = []  # (cache length, slots, ids), cache lengths descending
    start = 0
    while start < len(ordered):
        need = cache_length_for(lengths[ordered[start]], max_new_tokens, bucket)
        wave = ordered[start:start + slots_at(need)]
        if groups and groups[-1][0] == need:
            groups[-1][2].extend(wave)
        else:
            groups.append((need, slots_at(need), list(wave)))
        start += len(wave)
    if len(groups) > max_segments:
        return plan_segments(ids, lengths, max_new_tokens, slots_at, bucket * 2, max_segments)
    return [Segment(length, even_slots(len(members), most), tuple(members)) for length, most, members in groups]


def refill_count(free_slots: int, waiting: int, slots: int) -> int:
    """How many waiting prompts to prefill into free slots now (0: keep decoding)."""
    if waiting <= 0 or free_slots <= 0:
        return 0
    if free_slots >= max(1, math.ceil(slots * REFILL_FRACTION)) or free_slots >= waiting:
        return min(free_slots, waiting)
    return 0


def shrink_to(active: int, slots: int, waiting: int, steps_left: int) -> Optional[int]:
    """A smaller slot count for the rows still decoding, or None to keep the current one.

    Only once nothing waits (a refill would need the slots), when the active rows fit in
    half the slots, and when enough steps remain to repay capturing another graph.
    """
    if waiting > 0 or active <= 0 or steps_left < SHRINK_MIN_STEPS:
        return None
    half = round_up(slots // 2, SLOT_MULTIPLE)
    if half >= slots or active > half:
        return None
    target = half
    while target // 2 >= active and round_up(target // 2, SLOT_MULTIPLE) < target:
        target = round_up(target // 2, SLOT_MULTIPLE)
    return target
