"""Small shims for the older pinned stack (torch 2.1 with accelerate 1.0), applied before training starts."""

import torch

# Just after torch's own CPU deserializer (priority 10), before the accelerator ones.
CPU_INDEX_PRIORITY = 11


def ensure_cpu_set_device() -> None:
    """accelerate 1.0 calls ``torch.cpu.set_device`` for multi-process CPU (gloo) runs; torch < 2.2
    lacks it. The CPU is a single device, so selecting it is a no-op."""
    if not hasattr(torch.cpu, "set_device"):
        torch.cpu.set_device = lambda device: None


def _restore_on_indexed_cpu(storage, location: str):
    return storage if location.startswith("cpu:") else None


def ensure_indexed_cpu_loads() -> None:
    """Let ``torch.load(map_location="cpu:N")`` load onto the CPU.

    In a multi-process CPU run accelerate names each process's device ``cpu:N``, and the Trainer
    resumes its optimizer state with ``map_location=args.device``. torch's CPU deserializer only
    accepts ``"cpu"``, so on torch 2.1 the load falls through to the HPU one and fails with
    "HPU device module is not loaded": every resumed multi-process CPU run (a requeued Slurm job) died.
    """
    registry = getattr(torch.serialization, "_package_registry", [])
    if any(entry[2] is _restore_on_indexed_cpu for entry in registry):
        return  # a second parse in one process (a test, a benchmark): torch sorts the registry, and two
        # entries of one priority would be compared by their functions and fail with a TypeError
    torch.serialization.register_package(CPU_INDEX_PRIORITY, lambda _obj: None, _restore_on_indexed_cpu)


def apply_torch_shims() -> None:
    ensure_cpu_set_device()
    ensure_indexed_cpu_loads()
