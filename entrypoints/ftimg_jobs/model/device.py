"""What the job runs on, for run.json: device kind and name, and peak GPU memory."""

import torch


def device_info() -> dict:
    if torch.cuda.is_available():
        return {"type": "cuda", "gpu_name": torch.cuda.get_device_name(), "gpu_count": torch.cuda.device_count()}
    return {"type": "cpu", "gpu_name": None, "gpu_count": 0}


def peak_gpu_memory_bytes():
    return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
