"""Seconds and real tokens of every optimizer step, for the log and run.json."""

import time
from collections import deque

import torch
from transformers import TrainerCallback

from ftimg_jobs.train.batches import CountingCollator


def step_mark():
    """A point on the clock that runs the step: a CUDA event on a GPU (it completes when the device gets there,
    so recording it waits for nothing), the host's clock otherwise."""
    if torch.cuda.is_available():
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event
    return time.perf_counter()


def seconds_between(start, end, wait: bool):
    """Seconds from mark ``start`` to mark ``end``; None while the device has not reached ``end`` and ``wait`` is
    False."""
    if isinstance(end, float):
        return end - start
    if not end.query():
        if not wait:
            return None
        end.synchronize()
    return start.elapsed_time(end) / 1000


class ThroughputCallback(TrainerCallback):
    """Seconds and real tokens of every optimizer step; ``summary()`` goes to run.json.

    Steps are timed end to end (data, forward, backward, optimizer) on the device's clock: an event
    recorded at each step's end. Timing never synchronises, so the host can queue the next step's
    work while the GPU finishes this one; a step's seconds are read once the device has passed its
    end. Batches are counted in the order the dataloader made them, which is the order the steps
    consume them.
    """

    def __init__(self, counting_collator: CountingCollator, gradient_accumulation_steps: int):
        self.counting = counting_collator
        self.accumulation = gradient_accumulation_steps
        self.timed = []
        self.pending = deque()  # (start mark, end mark, tokens) of steps the device may not have finished
        self.last = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.last = step_mark()

    def on_step_end(self, args, state, control, **kwargs):
        mark = step_mark()
        tokens = sum(self.counting.token_counts.pop(0) for _ in range(self.accumulation)
                     if self.counting.token_counts)
        self.pending.append((self.last, mark, tokens))
        self.last = mark
        self.read(wait=False)

    def read(self, wait: bool) -> None:
        """Move the steps the device has finished (all of them when ``wait``) from pending to timed."""
        while self.pending:
            start, end, tokens = self.pending[0]
            seconds = seconds_between(start, end, wait)
            if seconds is None:
                return
            self.timed.append({"seconds": seconds, "tokens": tokens})
            self.pending.popleft()

    @property
    def steps(self) -> list:
        """``{"seconds", "tokens"}`` of every step so far, in order (waits for the device to finish them)."""
        self.read(wait=True)
        return self.timed

    def summary(self, warmup_steps: int = 2) -> dict:
        steps = self.steps
        measured = steps[warmup_steps:] or steps
        if not measured:
            return {}
        rates = sorted(step["tokens"] / step["seconds"] for step in measured)
        seconds = sum(step["seconds"] for step in measured)
        return {"steps_measured": len(measured),
                "median_tokens_per_second": rates[len(rates) // 2],
                "tokens_per_second": sum(step["tokens"] for step in measured) / seconds}
