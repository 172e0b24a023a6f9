"""The versions and GPU a benchmark ran with, as one JSON line.

Run in its own process so that the benchmark's parent process never creates a CUDA context
(it would hold GPU memory while every case runs).
"""

import json
import platform
from importlib import metadata

PACKAGES = ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "liger-kernel", "triton",
            "flash-attn-4", "flash-attn")


def environment() -> dict:
    import torch

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    memory = torch.cuda.get_device_properties(0).total_memory / 2 ** 30 if gpu else None
    return {"python": platform.python_version(), "versions": versions, "gpu": gpu, "gpu_memory_gib": memory,
            "cuda": torch.version.cuda, "host": platform.node()}


if __name__ == "__main__":
    print(json.dumps(environment()))
