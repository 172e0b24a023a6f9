"""LoRA adapters on a model (QLoRA is the same on a 4-bit base), and parameter counts."""

import logging

import torch

from ftimg_jobs.errors import JobError

log = logging.getLogger("ftimg_jobs")
# Output heads stay out of LoRA: the LM head is tied to or mirrors the embeddings,
# and a classification head is new and is trained in full (modules_to_save).
HEAD_MODULE_NAMES = {"lm_head", "score", "classifier", "embed_out", "output"}


def linear_module_names(model) -> list:
    """Leaf names of every linear layer (4-bit layers subclass nn.Linear) except output heads."""
    names = set()
    for qualified_name, module in model.named_modules():
        leaf = qualified_name.rsplit(".", 1)[-1]
        if isinstance(module, torch.nn.Linear) and leaf not in HEAD_MODULE_NAMES:
            names.add(leaf)
    return sorted(names)


def requested_targets(values) -> list:
    """``q_proj v_proj`` or ``q_proj,v_proj`` (seed 001's --trainable); ``auto`` or nothing: every linear layer."""
    names = [name.strip() for value in values or [] for name in str(value).split(",") if name.strip()]
    return [] if names in (["auto"], ["all-linear"]) else names


def apply_lora(model, lora_args, task_type: str):
    """Wrap the model with LoRA adapters; the frozen base keeps its dtype.

    ``--lora_dropout 0`` (the default) makes PEFT put an identity where the dropout
    would be, so no dropped copy of each adapted linear's input is kept for backward.

    QLoRA skips peft's prepare_model_for_kbit_training: it casts every frozen
    half-precision weight (embeddings, norms, LM head) to fp32, which turns the
    residual stream fp32 and costs memory and time (docs/performance.md).
    Checkpointing is the Trainer's or train/checkpointing.py's business.
    """
    from peft import LoraConfig, get_peft_model

    targets = requested_targets(lora_args.lora_target_modules) or linear_module_names(model)
    config = LoraConfig(r=lora_args.lora_r, lora_alpha=lora_args.lora_alpha,
                        lora_dropout=lora_args.lora_dropout, target_modules=targets,
                        bias="none", task_type=task_type)
    try:
        model = get_peft_model(model, config)
    except ValueError as error:
        raise JobError(f"--lora_target_modules {' '.join(targets)}: {error}") from None
    # Trainable weights in fp32: fp16 AMP cannot unscale fp16 gradients, and the
    # optimizer state is more accurate for it.
    for parameter in model.parameters():
        if parameter.requires_grad and parameter.dtype != torch.float32:
            parameter.data = parameter.data.float()
    log.info("LoRA r=%d alpha=%d dropout=%g on %s", lora_args.lora_r, lora_args.lora_alpha, lora_args.lora_dropout,
             ", ".join(targets))
    return model


def count_parameters(model) -> dict:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total}
