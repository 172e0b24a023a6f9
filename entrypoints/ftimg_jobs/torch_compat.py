"""Small shims for the older pinned stack (torch 2.1 with accelerate 1.0)."""

import torch


def ensure_cpu_set_device() -> None:
    """accelerate 1.0 calls ``torch.cpu.set_device`` for multi-process CPU (gloo) runs; torch < 2.2
    lacks it. The CPU is a single device, so selecting it is a no-op."""
    if not hasattr(torch.cpu, "set_device"):
        torch.cpu.set_device = lambda device: None
