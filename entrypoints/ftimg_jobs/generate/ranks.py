"""This process's place among the torchrun workers of a data-parallel generation run."""

import os
from dataclasses import dataclass
from datetime import timedelta

import torch.distributed as dist

# Ranks only wait for each other (before the first append and after the last record),
# so a wait can last as long as the slowest rank's share; gloo's 30-minute default would cut it.
RANK_WAIT_TIMEOUT = timedelta(days=7)


@dataclass
class Ranks:
    """This process's place among the torchrun workers; a world of one needs no process group.

    Uses gloo even on GPUs: ranks exchange only a few small Python objects, and gloo
    neither pins a device nor has NCCL's watchdog abort a long wait.
    """

    rank: int
    local_rank: int
    world_size: int

    @classmethod
    def from_environment(cls) -> "Ranks":
        ranks = cls(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                    int(os.environ.get("WORLD_SIZE", 1)))
        if ranks.world_size > 1 and not dist.is_initialized():
            dist.init_process_group("gloo", timeout=RANK_WAIT_TIMEOUT)
        return ranks

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def gather_stats(self, stats: dict) -> list:
        """Every rank's `stats`, on every rank; also a barrier."""
        if self.world_size == 1:
            return [stats]
        gathered = [None] * self.world_size
        dist.all_gather_object(gathered, stats)
        return gathered

    def close(self) -> None:
        if self.world_size > 1:
            dist.destroy_process_group()
