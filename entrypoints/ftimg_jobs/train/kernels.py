"""Liger's fused Triton kernels (RMSNorm, SwiGLU, RoPE, linear + cross-entropy), where this stack has them."""

import importlib.util
import logging

import torch

log = logging.getLogger("ftimg_jobs")


def liger_unavailable_reason(model):
    if not torch.cuda.is_available():
        return "Liger's Triton kernels need a CUDA GPU"
    if importlib.util.find_spec("liger_kernel") is None:
        return "liger-kernel is not installed in this image"
    try:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except ImportError as error:
        return f"liger-kernel does not load with this stack: {error}"
    if model.config.model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        return f"liger-kernel has no kernels for model type {model.config.model_type!r}"
    return None


def apply_liger(model, speed_args, causal_lm: bool) -> dict:
    """Patch the base model (before LoRA wraps it) with Liger's fused kernels; returns what was done."""
    if not speed_args.liger_kernels:
        return {"applied": False, "reason": "--liger_kernels False"}
    reason = liger_unavailable_reason(model)
    if reason:
        log.info("liger kernels skipped: %s", reason)
        return {"applied": False, "reason": reason}
    from liger_kernel.transformers.monkey_patch import _apply_liger_kernel_to_instance

    # The fused linear + cross-entropy never materialises the logits; it only fits causal-LM heads.
    _apply_liger_kernel_to_instance(model=model, fused_linear_cross_entropy=causal_lm, cross_entropy=False)
    log.info("liger kernels: RMSNorm, SwiGLU, RoPE%s", ", fused linear cross-entropy" if causal_lm else "")
    return {"applied": True, "fused_loss": causal_lm, "reason": "liger-kernel installed and the GPU supports it"}
