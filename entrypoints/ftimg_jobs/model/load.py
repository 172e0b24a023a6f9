"""Load a model: attention kernel, precision (model/precision.py), 4-bit quantization, an adapter.

QLoRA is LoRA plus ``q_lora`` (the base is loaded in 4-bit NF4 with double
quantization and bf16/fp16 compute), not a separate code path.
"""

import logging
import os

import torch
import transformers

from ftimg_jobs.errors import JobError
from ftimg_jobs.model.attention import FLASH, FLASH4, FLASH4_ARCHITECTURES, AttentionProbe, choose_attention
from ftimg_jobs.model.flash4_attention import (distribution_installed, flash4_problem, model_problem,
                                               use_flash4_attention)
from ftimg_jobs.model.precision import torch_dtype, training_compute_dtype

log = logging.getLogger("ftimg_jobs")
TRANSFORMERS_MAJOR = int(transformers.__version__.split(".")[0])


def dtype_kwargs(dtype) -> dict:
    """transformers 5 renamed ``torch_dtype`` to ``dtype``."""
    return {"dtype": dtype} if TRANSFORMERS_MAJOR >= 5 else {"torch_dtype": dtype}


def select_attention(model_args, weights_dtype, compute_dtype=None) -> dict:
    """Pick and justify the attention implementation; ``--attn_implementation flash_attention_4/2`` insists.

    ``compute_dtype``: the dtype attention runs in when it differs from the weights' (autocast).
    """
    cuda = torch.cuda.is_available()
    capability = tuple(torch.cuda.get_device_capability()) if cuda else None
    half = (torch.float16, torch.bfloat16)
    flash4_could_run = cuda and capability[0] in FLASH4_ARCHITECTURES
    # The model's own refusal (head size, sliding window, dropout) counts before loading, so that the
    # next choice (flash-attn 2 where installed) is taken rather than SDPA after the fact.
    problem = flash4_problem(flash4_could_run) or (model_config_problem(model_args, capability)
                                                   if flash4_could_run else None)
    # By distribution name: flash-attn-4 installs a flash_attn package too (flash_attn.cute).
    probe = AttentionProbe(flash2_installed=distribution_installed("flash-attn"), flash4_problem=problem,
                           cuda=cuda, capability=capability, half_weights=weights_dtype in half,
                           half_compute=(compute_dtype or weights_dtype) in half)
    requested = model_args.attn_implementation
    implementation, reason = choose_attention(requested, model_args.flash_attn, probe)
    if requested in (FLASH, FLASH4) and implementation != requested:
        raise JobError(f"--attn_implementation {requested}: {reason}. Use --attn_implementation auto or sdpa")
    if model_args.flash_attn and implementation not in (FLASH, FLASH4):
        log.warning("--flash_attn: %s; using %s instead", reason, implementation)
    return {"implementation": implementation, "reason": reason, "requested": requested}


def model_config_problem(model_args, capability: tuple):
    """Why FlashAttention-4 cannot run the model at --model_name_or_path (None: it can, or its config is unreadable,
    which loading the model then reports with the flag's name)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model_args.model_name_or_path,
                                            trust_remote_code=model_args.trust_remote_code)
    except (OSError, ValueError):
        return None
    return model_problem(config, capability)


def local_device_index() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def load_training_model(model_class, model_args, lora_args, training_args, **config_kwargs) -> tuple:
    """Load the base model to train; returns ``(model, attention info)``."""
    half = torch_dtype(training_compute_dtype(training_args))
    # Full fine-tuning keeps fp32 master weights (autocast does the half-precision math);
    # adapters train on a frozen half-precision (or 4-bit) base.
    weights_dtype = half if lora_args.use_lora else torch.float32
    attention = select_attention(model_args, weights_dtype, compute_dtype=half)
    kwargs = dict(config_kwargs, trust_remote_code=model_args.trust_remote_code, **dtype_kwargs(weights_dtype))
    if lora_args.q_lora:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=half)
        kwargs["device_map"] = {"": local_device_index()}
    model = from_pretrained_with_attention(model_class, model_args.model_name_or_path, attention, kwargs)
    if training_args.gradient_checkpointing:
        model.config.use_cache = False
    return model, attention


def load_model_with_adapter(model_class, path: str, adapter_path, attention: dict, kwargs: dict):
    """The model at `path` with the LoRA adapter applied (not merged) when one is given."""
    model = from_pretrained_with_attention(model_class, path, attention, kwargs)
    if not adapter_path:
        return model
    from peft import PeftModel

    return PeftModel.from_pretrained(model, adapter_path)


def from_pretrained_with_attention(model_class, path, attention, kwargs):
    """Load with the chosen attention; a model without SDPA support falls back to eager.

    FlashAttention-4 loads as SDPA (its fallback for padded batches and decoding), then switches.
    """
    model = load_as(model_class, path, attention, kwargs)
    if attention["implementation"] == FLASH4:
        problem = use_flash4_attention(model)
        if problem and attention.get("requested") == FLASH4:
            raise JobError(f"--attn_implementation {FLASH4}: {problem}. Use --attn_implementation auto or sdpa")
        if problem:
            attention.update(implementation="sdpa", reason=f"FlashAttention-4 refused this model: {problem}")
            log.warning("attention: %s; using SDPA", attention["reason"])
    return model


def load_as(model_class, path, attention, kwargs):
    implementation = "sdpa" if attention["implementation"] == FLASH4 else attention["implementation"]
    try:
        return model_class.from_pretrained(path, attn_implementation=implementation, **kwargs)
    except ValueError as error:
        if implementation != "sdpa" or "sdpa" not in str(error).lower():
            raise JobError(f"cannot load the model from {path}: {error}") from None
        attention.update(implementation="eager", reason=f"the model does not support SDPA: {error}")
        log.warning("attention: %s; using eager", attention["reason"])
        return model_class.from_pretrained(path, attn_implementation="eager", **kwargs)
    except ImportError as error:
        raise JobError(f"cannot load the model from {path}: {error}") from None
    except OSError as error:
        raise JobError(f"cannot load the model from {path}: {error}. Point --model_name_or_path at a "
                       "local model directory (mounted into the container)") from None
