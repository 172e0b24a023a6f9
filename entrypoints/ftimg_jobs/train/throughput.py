"""Seconds and real tokens of every optimizer step, for the log and run.json."""

import time

import torch
from transformers import TrainerCallback

from ftimg_jobs.train.batches import CountingCollator


class ThroughputCallback(TrainerCallback):
    """Seconds and real tokens of every optimizer step; ``summary()`` goes to run.json.

    Steps are timed end to end (data, forward, backward, optimizer) after a device
    synchronisation. Batches are counted in the order the dataloader made them,
    which is the order the steps consume them.
    """

    def __init__(self, counting_collator: CountingCollator, gradient_accumulation_steps: int):
        self.counting = counting_collator
        self.accumulation = gradient_accumulation_steps
        self.steps = []
        self.last = None

    @staticmethod
    def now():
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self.last = self.now()

    def on_step_end(self, args, state, control, **kwargs):
        now = self.now()
        tokens = sum(self.counting.token_counts.pop(0) for _ in range(self.accumulation)
                     if self.counting.token_counts)
        self.steps.append({"seconds": now - self.last, "tokens": tokens})
        self.last = now

    def summary(self, warmup_steps: int = 2) -> dict:
        measured = self.steps[warmup_steps:] or self.steps
        if not measured:
            return {}
        rates = sorted(step["tokens"] / step["seconds"] for step in measured)
        seconds = sum(step["seconds"] for step in measured)
        return {"steps_measured": len(measured),
                "median_tokens_per_second": rates[len(rates) // 2],
                "tokens_per_second": sum(step["tokens"] for step in measured) / seconds}
