"""The optimizer choice: 8-bit AdamW for full fine-tuning on a GPU unless the user chose otherwise."""

import importlib.util
import logging
from typing import Callable

import torch

log = logging.getLogger("ftimg_jobs")

EIGHT_BIT_OPTIMIZER = "paged_adamw_8bit"


def choose_optimizer(training_args, lora_args, speed_args, fp32_state_fits: Callable[[], bool]) -> dict:
    """Full fine-tuning: AdamW's two fp32 states are 8 bytes a weight; 8-bit AdamW needs 2, but its step is
    slower (measured on an H200: docs/performance.md). ``fp32_state_fits``: whether the step fits the memory
    budget with fp32 state and every layer checkpointed (asked only when --eight_bit_optimizer is unset)."""
    default_optim = type(training_args).__dataclass_fields__["optim"].default
    optim_value = getattr(training_args.optim, "value", training_args.optim)
    if lora_args.use_lora:
        return {"optim": optim_value, "reason": "LoRA: the optimizer state is small"}
    if speed_args.eight_bit_optimizer is False or training_args.deepspeed:
        return {"optim": optim_value, "reason": "--eight_bit_optimizer False or --deepspeed given"}
    if optim_value != getattr(default_optim, "value", default_optim):
        return {"optim": optim_value, "reason": "--optim given"}
    if not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None:
        return {"optim": optim_value, "reason": "8-bit AdamW needs bitsandbytes and a CUDA GPU"}
    if speed_args.eight_bit_optimizer is None and fp32_state_fits():
        log.info("optimizer: %s with fp32 state (full fine-tuning: it fits the memory budget; "
                 "--eight_bit_optimizer True for 8-bit AdamW)", optim_value)
        return {"optim": optim_value, "reason": "full fine-tuning: fp32 AdamW state fits the memory budget "
                                                "(--eight_bit_optimizer True for bitsandbytes' 8-bit AdamW)"}
    training_args.optim = EIGHT_BIT_OPTIMIZER
    why = ("--eight_bit_optimizer True" if speed_args.eight_bit_optimizer
           else "fp32 AdamW state does not fit the memory budget even with every layer checkpointed")
    log.info("optimizer: %s (full fine-tuning: %s; --optim adamw_torch keeps fp32 AdamW state)", EIGHT_BIT_OPTIMIZER, why)
    return {"optim": EIGHT_BIT_OPTIMIZER, "reason": f"full fine-tuning on a GPU: a quarter of AdamW's state ({why})"}
