"""The model a generation rank decodes with: base (+ adapter) on this rank's GPU, or the CPU without one."""

import torch
from transformers import AutoModelForCausalLM

from ftimg_jobs.model.load import dtype_kwargs, load_model_with_adapter, select_attention
from ftimg_jobs.model.precision import requested_dtype, torch_dtype


def load_generation_model(model_args, adapter_args, generation_args, local_rank: int) -> tuple:
    """Returns ``(model, device, dtype, attention info)``."""
    cuda = torch.cuda.is_available()
    # More processes than GPUs (NPROC_PER_NODE) share the GPUs round-robin.
    device = torch.device("cuda", local_rank % torch.cuda.device_count()) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dtype = torch_dtype(requested_dtype(generation_args.torch_dtype, cuda, cuda and torch.cuda.is_bf16_supported()))
    attention = select_attention(model_args, dtype)
    kwargs = dict(trust_remote_code=model_args.trust_remote_code, **dtype_kwargs(dtype))
    model = load_model_with_adapter(AutoModelForCausalLM, model_args.model_name_or_path,
                                    adapter_args.adapter_name_or_path, attention, kwargs)
    model.to(device).eval()
    return model, device, dtype, attention
