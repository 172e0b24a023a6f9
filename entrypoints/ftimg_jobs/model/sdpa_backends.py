"""Which of SDPA's backends a training job tries first: cuDNN on datacenter Hopper and Blackwell GPUs.

Measured on an H200 (docs/performance.md): causal attention forward + backward at 4,096 tokens,
32 heads of 128, bf16, took 1.13 ms with SDPA's cuDNN backend and 2.02 ms with its flash backend.
PyTorch 2.11 makes the same choice by itself on these GPUs once its cuDNN is above 9.15.0 (as the
cu130 profile's 9.19 is); setting it here makes the order explicit, recorded in run.json, and the
same under a torch whose own default differs.

The order is set for the whole job process, not around the model's forward pass. The backward
kernel follows the forward kernel on its own (autograd records the op the forward pass ran), but a
checkpointed layer runs its forward pass again during backward, outside any forward-time context,
and that recompute must choose the same backend as the first pass. A training job is a process of
its own, so a process-wide order covers forward, backward, recompute and evaluation alike.

Left to PyTorch's own order, each with its reason in run.json (``speed.sdpa_backends``):
- packed rows (packed_attention.py) and any attention other than plain SDPA: those make one SDPA
  call per example with cuDNN left out, because cuDNN builds a plan for every new sequence length;
- GPUs other than sm90, sm100 and sm103: the ones PyTorch itself puts cuDNN first on;
- a torch whose ``sdpa_kernel`` cannot set an order (the cu121 image's torch 2.1.2 has no cuDNN backend);
- cuDNN 9.15.0 or older: PyTorch puts cuDNN first only from 9.15.1 on, the version that fixed
  out-of-bounds reads for sequence lengths not a multiple of 128 (pytorch/pytorch#169849);
- ``TORCH_CUDNN_SDPA_DEPRIORITIZED=1``, PyTorch's own switch to keep cuDNN out of first place.
"""

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Optional

log = logging.getLogger("ftimg_jobs")

PLAIN_SDPA = "sdpa"
CUDNN_FIRST = ("CUDNN_ATTENTION", "FLASH_ATTENTION", "EFFICIENT_ATTENTION", "MATH")
# Datacenter Hopper (H100, H200, H20, GH200) and Blackwell (B200, GB200, B300): where PyTorch's
# own default puts cuDNN first. Consumer Blackwell (12.x) and Ampere are left alone: nobody here
# measured them, and published measurements put cuDNN behind flash on Ampere.
CUDNN_FIRST_CAPABILITIES = {(9, 0): "Hopper", (10, 0): "Blackwell", (10, 3): "Blackwell Ultra"}
MIN_CUDNN_VERSION = 91501
DEPRIORITIZED_ENV = "TORCH_CUDNN_SDPA_DEPRIORITIZED"

# The order stays set until the process ends (see the module docstring); release_sdpa_priority() undoes it.
_held = contextlib.ExitStack()


@dataclass(frozen=True)
class SdpaMachine:
    """What decides the backend order, as probed from torch and the GPU."""

    torch_version: str
    priority_api: bool                   # torch.nn.attention.sdpa_kernel takes set_priority
    cuda: bool
    capability: Optional[tuple]          # (major, minor) of the current GPU
    cudnn_version: Optional[int]         # e.g. 91900 for 9.19.0
    deprioritized: bool                  # TORCH_CUDNN_SDPA_DEPRIORITIZED=1


def cudnn_version_text(version: int) -> str:
    return f"{version // 10000}.{version // 100 % 100}.{version % 100}"


def choose_sdpa_priority(attention_implementation: str, machine: SdpaMachine) -> dict:
    """``{"cudnn_first": bool, "reason": str}``. Pure; probe_machine() fills ``machine``."""
    def keep(reason):
        return {"cudnn_first": False, "reason": reason + "; SDPA keeps PyTorch's own backend order"}

    if attention_implementation != PLAIN_SDPA:
        return keep(f"attention is {attention_implementation!r}, not plain SDPA over fixed-length rows")
    if not machine.cuda:
        return keep("no CUDA GPU")
    architecture = CUDNN_FIRST_CAPABILITIES.get(tuple(machine.capability or ()))
    if architecture is None:
        major, minor = machine.capability
        return keep(f"compute capability {major}.{minor} is not one cuDNN attention is put first on "
                    f"({', '.join(f'{a}.{b}' for a, b in CUDNN_FIRST_CAPABILITIES)})")
    if not machine.priority_api:
        return keep(f"torch {machine.torch_version} cannot order SDPA backends (sdpa_kernel has no set_priority)")
    if machine.cudnn_version is None or machine.cudnn_version < MIN_CUDNN_VERSION:
        found = "no cuDNN" if machine.cudnn_version is None else f"cuDNN {cudnn_version_text(machine.cudnn_version)}"
        return keep(f"{found}: cuDNN attention needs {cudnn_version_text(MIN_CUDNN_VERSION)}+ "
                    "(older versions read out of bounds for lengths not a multiple of 128)")
    if machine.deprioritized:
        return keep(f"{DEPRIORITIZED_ENV}=1")
    return {"cudnn_first": True,
            "reason": f"{architecture} GPU, fixed-length rows: cuDNN attention forward+backward was 1.8x "
                      "faster than flash on an H200 (docs/performance.md)"}


def probe_machine() -> SdpaMachine:
    import inspect

    import torch

    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        priority_api = ("set_priority" in inspect.signature(sdpa_kernel).parameters
                        and hasattr(SDPBackend, "CUDNN_ATTENTION"))
    except ImportError:
        priority_api = False
    cuda = torch.cuda.is_available()
    return SdpaMachine(torch_version=torch.__version__.split("+")[0], priority_api=priority_api, cuda=cuda,
                       capability=tuple(torch.cuda.get_device_capability()) if cuda else None,
                       cudnn_version=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
                       deprioritized=os.environ.get(DEPRIORITIZED_ENV, "").strip().lower() in ("1", "true", "yes", "on"))


def hold_cudnn_first() -> list:
    """Put cuDNN first in SDPA's backend order for the rest of the process; returns the order as torch reports it."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    order = [getattr(SDPBackend, name) for name in CUDNN_FIRST]
    # Listing a backend also enables it; OVERRIDEABLE (for out-of-tree devices) stays enabled as by default.
    extra = [SDPBackend.OVERRIDEABLE] if hasattr(SDPBackend, "OVERRIDEABLE") else []
    _held.enter_context(sdpa_kernel(order + extra, set_priority=True))
    return current_priority()


def current_priority() -> list:
    """SDPA's backend priority as names, highest first."""
    import torch
    from torch.nn.attention import SDPBackend

    names = {int(getattr(SDPBackend, name)): name for name in dir(SDPBackend) if name.isupper()}
    return [names.get(value, str(value)) for value in torch._C._get_sdp_priority_order()]


def release_sdpa_priority() -> None:
    """Restore the order that was in effect before hold_cudnn_first()."""
    _held.close()


def apply_sdpa_priority(attention_implementation: str) -> dict:
    """Decide, apply where it pays, log; returns the note for run.json (``speed.sdpa_backends``)."""
    note = choose_sdpa_priority(attention_implementation, probe_machine())
    if note["cudnn_first"]:
        note["order"] = hold_cudnn_first()
    log.info("SDPA backends: %s (%s)", "cuDNN first" if note["cudnn_first"] else "unchanged", note["reason"])
    return note
