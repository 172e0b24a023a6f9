"""The optimizer of full fine-tuning on a GPU: fp32 AdamW where it costs no recompute, else 8-bit AdamW."""

import importlib.util
import logging
from pathlib import Path
from typing import Callable, Optional

import torch

log = logging.getLogger("ftimg_jobs")

EIGHT_BIT_OPTIMIZER = "paged_adamw_8bit"
# The same AdamW as transformers' default "adamw_torch" in one kernel: no state-sized temporary during the step.
FUSED_ADAMW = "adamw_torch_fused"


def checkpoint_optimizer(checkpoint: Optional[str]) -> Optional[str]:
    """The optimizer a checkpoint was trained with: the Trainer saves its TrainingArguments beside it."""
    path = Path(checkpoint) / "training_args.bin" if checkpoint else None
    if path is None or not path.is_file():
        return None
    try:
        saved = torch.load(path, weights_only=False)  # the run's own file, written by the Trainer
    except Exception as error:  # noqa: BLE001 - an unreadable file only loses the hint
        log.warning("%s: could not read the optimizer it was trained with (%s)", path, error)
        return None
    optim = getattr(saved, "optim", None)
    return getattr(optim, "value", optim)


def choose_optimizer(training_args, lora_args, speed_args, layers_needed: Callable[[str], Optional[int]],
                     resumed_optim: Optional[str] = None) -> dict:
    """Full fine-tuning: AdamW's two fp32 states are 8 bytes a weight, 8-bit AdamW's 2, but its step is slower
    (measured on an H200: docs/performance.md). With --eight_bit_optimizer unset, fp32 AdamW is kept where it
    needs no more checkpointed layers than 8-bit AdamW would (``layers_needed(optim)``: the layers the plan would
    checkpoint with it, None where it does not fit), and a resumed run keeps the kind its checkpoint has
    (``resumed_optim``): the other kind's state does not load."""
    default_optim = type(training_args).__dataclass_fields__["optim"].default
    optim_value = getattr(training_args.optim, "value", training_args.optim)
    if lora_args.use_lora:
        return {"optim": optim_value, "reason": "LoRA: the optimizer state is small"}
    if speed_args.eight_bit_optimizer is False or training_args.deepspeed:
        return {"optim": optim_value, "reason": "--eight_bit_optimizer False or --deepspeed given"}
    if optim_value != getattr(default_optim, "value", default_optim):
        return {"optim": optim_value, "reason": "--optim given"}
    if not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None:
        if torch.cuda.is_available() and speed_args.eight_bit_optimizer is None and layers_needed(optim_value) is None:
            log.warning("fp32 AdamW state does not fit the memory budget; install bitsandbytes for 8-bit AdamW")
        return {"optim": optim_value, "reason": "8-bit AdamW needs bitsandbytes and a CUDA GPU"}
    if speed_args.eight_bit_optimizer:
        return use_eight_bit(training_args, "--eight_bit_optimizer True")
    if resumed_optim is not None:
        if "8bit" in resumed_optim:  # bitsandbytes' names: paged_adamw_8bit, adamw_bnb_8bit, ...
            return use_eight_bit(training_args, f"the checkpoint resumed was trained with {resumed_optim}")
        return use_fp32(training_args, optim_value, f"the checkpoint resumed was trained with {resumed_optim}")
    fp32_layers, eight_bit_layers = layers_needed(FUSED_ADAMW), layers_needed(EIGHT_BIT_OPTIMIZER)
    if fp32_layers is not None and (eight_bit_layers is None or fp32_layers <= eight_bit_layers):
        return use_fp32(training_args, optim_value, f"fp32 AdamW state fits the memory budget with {fp32_layers} "
                                                    "checkpointed layers, as few as 8-bit AdamW would need")
    return use_eight_bit(training_args, "fp32 AdamW state would not fit the memory budget without more checkpointed "
                                        f"layers ({fp32_layers} against {eight_bit_layers})" if fp32_layers is not None
                         else "fp32 AdamW state does not fit the memory budget")


def use_fp32(training_args, optim_value: str, why: str) -> dict:
    chosen = FUSED_ADAMW if optim_value == "adamw_torch" else optim_value
    training_args.optim = chosen
    log.info("optimizer: %s (full fine-tuning: %s; --eight_bit_optimizer True for 8-bit AdamW)", chosen, why)
    return {"optim": chosen, "reason": f"full fine-tuning: {why}"}


def use_eight_bit(training_args, why: str) -> dict:
    training_args.optim = EIGHT_BIT_OPTIMIZER
    log.info("optimizer: %s (full fine-tuning: %s; --eight_bit_optimizer False keeps fp32 AdamW state)",
             EIGHT_BIT_OPTIMIZER, why)
    return {"optim": EIGHT_BIT_OPTIMIZER, "reason": f"full fine-tuning on a GPU, a quarter of AdamW's state: {why}"}
