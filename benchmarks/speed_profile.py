"""Where a training step's time goes: GPU kernel time against wall time, over a few steps after the measured ones.

A step whose kernels keep the GPU busy for most of its wall time is bound by the GPU; one with
long idle gaps is bound by the host (Python and kernel launches), which a faster kernel does not
help and fewer launches (fusion, compiled regions) do. Only CUDA activity is traced, so the
profiler adds little host work of its own.
"""

import time

import torch
from transformers import TrainerCallback

TOP_KERNELS = 12


def busy_microseconds(intervals: list) -> float:
    """Length of the union of ``(start, end)`` intervals: time at least one kernel ran."""
    busy, reach = 0.0, None
    for start, end in sorted(intervals):
        if reach is None or start > reach:
            busy += end - start
            reach = end
        elif end > reach:
            busy += end - reach
            reach = end
    return busy


def summarize(kernels: list, steps: int, wall_seconds: float) -> dict:
    """``kernels``: ``(name, start_us, end_us)`` of every GPU kernel in ``steps`` steps of ``wall_seconds``."""
    busy = busy_microseconds([(start, end) for _, start, end in kernels]) / 1e6
    totals = {}
    for name, start, end in kernels:
        seconds, count = totals.get(name, (0.0, 0))
        totals[name] = (seconds + (end - start) / 1e6, count + 1)
    top = sorted(totals.items(), key=lambda item: -item[1][0])[:TOP_KERNELS]
    return {"steps": steps, "wall_seconds_per_step": wall_seconds / steps,
            "gpu_busy_seconds_per_step": busy / steps,
            "gpu_busy_share": busy / wall_seconds if wall_seconds else None,
            "kernels_per_step": len(kernels) / steps,
            "top_kernels": [{"name": name[:120], "ms_per_step": 1e3 * seconds / steps, "calls_per_step": count / steps}
                            for name, (seconds, count) in top]}


class StepProfile(TrainerCallback):
    """Traces GPU kernels over ``steps`` optimizer steps starting after step ``after``; ``result`` holds the summary."""

    def __init__(self, after: int, steps: int):
        self.after, self.steps = after, steps
        self.profiler, self.started, self.result = None, 0.0, None

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.after and self.profiler is None:
            torch.cuda.synchronize()
            self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA])
            self.profiler.start()
            self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.profiler is not None and self.result is None and state.global_step >= self.after + self.steps:
            self.finish(self.steps)

    def on_train_end(self, args, state, control, **kwargs):
        if self.profiler is not None and self.result is None:  # training ended inside the traced steps
            self.finish(state.global_step - self.after)

    def finish(self, steps: int) -> None:
        torch.cuda.synchronize()
        wall = time.perf_counter() - self.started
        self.profiler.stop()
        # Every GPU activity counts as busy time: kernels, and the few copies and fills between them.
        kernels = [(event.name, event.time_range.start, event.time_range.end) for event in self.profiler.events()
                   if event.device_type == torch.autograd.DeviceType.CUDA]
        self.result = summarize(kernels, max(steps, 1), wall)
