"""The optimizer choice: 8-bit AdamW for full fine-tuning on a GPU unless the user chose otherwise."""

import importlib.util
import logging

import torch

log = logging.getLogger("ftimg_jobs")

EIGHT_BIT_OPTIMIZER = "paged_adamw_8bit"


def choose_optimizer(training_args, lora_args, speed_args) -> dict:
    """Full fine-tuning: AdamW's two fp32 states are 8 bytes a weight; 8-bit AdamW needs 2."""
    default_optim = type(training_args).__dataclass_fields__["optim"].default
    optim_value = getattr(training_args.optim, "value", training_args.optim)
    if lora_args.use_lora:
        return {"optim": optim_value, "reason": "LoRA: the optimizer state is small"}
    if not speed_args.eight_bit_optimizer or training_args.deepspeed:
        return {"optim": optim_value, "reason": "--eight_bit_optimizer False or --deepspeed given"}
    if optim_value != getattr(default_optim, "value", default_optim):
        return {"optim": optim_value, "reason": "--optim given"}
    if not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None:
        return {"optim": optim_value, "reason": "8-bit AdamW needs bitsandbytes and a CUDA GPU"}
    training_args.optim = EIGHT_BIT_OPTIMIZER
    log.info("optimizer: %s (full fine-tuning; --optim adamw_torch keeps fp32 AdamW state)", EIGHT_BIT_OPTIMIZER)
    return {"optim": EIGHT_BIT_OPTIMIZER, "reason": "full fine-tuning on a GPU: a quarter of AdamW's state"}
