"""Share pending prompts between ranks and cut them into low-padding batches (torch-free).

Prompts are sorted by token length, longest first: a batch then holds prompts of
similar length (little left padding to compute on), and the largest batch runs
first, so running out of memory shows up at once instead of hours in.
Ranks take turns down that sorted list, so every rank gets a similar mix of long
and short prompts and they finish at about the same time.
"""

from typing import Dict, List, Sequence, TypeVar

Item = TypeVar("Item")


def sort_longest_first(ids: Sequence[Item], lengths: Dict[Item, int]) -> List[Item]:
    """`ids` by descending length; equal lengths keep their input order (stable sort)."""
    return sorted(ids, key=lambda item: -lengths[item])


def rank_share(sorted_ids: Sequence[Item], rank: int, world_size: int) -> List[Item]:
    """Every `world_size`-th id starting at `rank`: disjoint shares that cover all ids."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a world of {world_size} process(es)")
    return list(sorted_ids[rank::world_size])


def batches(ids: Sequence[Item], batch_size: int) -> List[List[Item]]:
    """Consecutive runs of at most `batch_size` ids (so sorted ids give length-homogeneous batches)."""
    if batch_size < 1:
        raise ValueError(f"--batch_size must be at least 1, got {batch_size}")
    return [list(ids[start:start + batch_size]) for start in range(0, len(ids), batch_size)]
