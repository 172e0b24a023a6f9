"""The model a generation rank decodes with: base (+ adapter) on this rank's GPU, or the CPU without one.

A LoRA adapter is folded into the weights by default: unmerged, every adapted linear
layer runs three matrix products instead of one, which doubles the kernels of a decode
step. The base is loaded unquantized in bf16/fp16, so a QLoRA adapter (trained against
the 4-bit base) is merged into the dequantized base; run.json says so.
"""

import torch
from transformers import AutoModelForCausalLM

from ftimg_jobs.model.adapter import adapter_training_job
from ftimg_jobs.model.load import dtype_kwargs, load_model_with_adapter, select_attention
from ftimg_jobs.model.precision import requested_dtype, torch_dtype


def load_generation_model(model_args, adapter_args, generation_args, local_rank: int) -> tuple:
    """Returns ``(model, device, dtype, attention info, adapter info or None)``."""
    cuda = torch.cuda.is_available()
    # More processes than GPUs (NPROC_PER_NODE) share the GPUs round-robin.
    device = torch.device("cuda", local_rank % torch.cuda.device_count()) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dtype = torch_dtype(requested_dtype(generation_args.torch_dtype, cuda, cuda and torch.cuda.is_bf16_supported()))
    attention = select_attention(model_args, dtype)
    kwargs = dict(trust_remote_code=model_args.trust_remote_code, **dtype_kwargs(dtype))
    if cuda:
        kwargs["device_map"] = {"": device}  # straight onto the GPU, without a copy in host memory first
    adapter_path = adapter_args.adapter_name_or_path
    model = load_model_with_adapter(AutoModelForCausalLM, model_args.model_name_or_path, adapter_path, attention,
                                    kwargs)
    adapter = None
    if adapter_path:
        trained_with = adapter_training_job(adapter_path)
        adapter = {"path": adapter_path, "trained_with": trained_with, "merged": generation_args.merge_adapter}
        if generation_args.merge_adapter:
            model = model.merge_and_unload()
            adapter["merged_into"] = (f"the unquantized {str(dtype).replace('torch.', '')} base (the adapter was "
                                      "trained on its 4-bit quantization)" if trained_with and "qlora" in trained_with
                                      else f"a {str(dtype).replace('torch.', '')} copy of the base")
    model.to(device).eval()
    return model, device, dtype, attention, adapter
