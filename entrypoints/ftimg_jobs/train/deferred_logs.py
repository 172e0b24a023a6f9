"""A step's logged loss and gradient norm, copied off the GPU without making the host wait for the step.

transformers logs a step by reading its loss (and gradient norm) with ``.item()``, which waits until the
GPU has finished everything queued so far. With ``--logging_steps 1`` (the jobs' default) every step
then ends with the GPU drained: the host's work between steps (callbacks, the next batch, the model's
``train()`` walk over every module, the first launches of the forward pass) runs while the GPU sits idle.
Here the two numbers are copied to pinned host memory behind the step's own work, and a CUDA event says
when they have arrived; JobTrainer writes the log then, at most a step later, under the step it belongs to.
"""

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class PendingLog:
    """One step's log, on its way to the host."""

    step: int
    epoch: Optional[float]
    tokens_seen: Optional[int]
    steps_covered: int  # steps whose losses the sum holds (the logging interval)
    learning_rate: float
    values: torch.Tensor  # [loss sum] or [loss sum, gradient norm], on the host once ``arrived`` has passed
    grad_norm: Optional[float] = None  # a norm the optimizer gave as a number (None: in ``values``, or none)
    arrived: Optional[object] = None  # torch.cuda.Event after the copy; None: the values are on the host already

    def ready(self) -> bool:
        return self.arrived is None or self.arrived.query()

    def wait(self) -> None:
        if self.arrived is not None:
            self.arrived.synchronize()

    @property
    def loss_sum(self) -> float:
        return self.values.tolist()[0]

    def logs(self) -> dict:
        """What transformers' Trainer logs for the interval: mean loss, gradient norm, learning rate."""
        values = self.values.tolist()
        logs = {"loss": values[0] / self.steps_covered}
        grad_norm = values[1] if len(values) > 1 else self.grad_norm
        if grad_norm is not None:
            logs["grad_norm"] = grad_norm
        logs["learning_rate"] = self.learning_rate
        return logs


def start_copy(loss_sum: torch.Tensor, grad_norm, **fields) -> PendingLog:
    """Queue the copy of ``loss_sum`` (a 0-d tensor) and ``grad_norm`` (a tensor, a number or None) to the host;
    ``fields``: PendingLog's other fields. Nothing here waits for the GPU."""
    parts = [loss_sum.detach().float().reshape(())]
    if isinstance(grad_norm, torch.Tensor):
        parts.append(grad_norm.detach().float().reshape(()).to(loss_sum.device))
        number_norm = None
    else:
        number_norm = None if grad_norm is None else float(grad_norm)
    values = torch.stack(parts)
    if values.device.type != "cuda":
        return PendingLog(values=values, grad_norm=number_norm, **fields)
    host = torch.empty(len(parts), dtype=torch.float32, pin_memory=True)
    host.copy_(values, non_blocking=True)
    arrived = torch.cuda.Event()
    arrived.record()
    return PendingLog(values=host, grad_norm=number_norm, arrived=arrived, **fields)
