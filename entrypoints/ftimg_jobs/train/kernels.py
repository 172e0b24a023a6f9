"""Liger's fused Triton kernels (RMSNorm, SwiGLU, RoPE, linear + cross-entropy), where this stack has them."""

import importlib.util
import logging
import os

import torch

from ftimg_jobs.train.toolchain import triton_toolchain_problem

log = logging.getLogger("ftimg_jobs")

# liger-kernel 0.8.5+ chooses each op's kernel at call time. Where nvidia-cutlass-dsl is installed (flash-attn-4
# brings it) its RoPE switches to a CuTe DSL kernel for calls of 131,072+ query head-rows (4,096 tokens of a
# 32-head model), and that kernel is compiled for each new sequence length: every padding-free row of a new
# length, and every new cls width, compiled one. Its Triton RoPE serves every length from one compile. Measured
# on an H200 (issue 15, docs/performance.md): with the Triton RoPE the variable-length case went from 1.60x to
# 3.05x its baseline and cls from 1.95x to 2.13x. Liger reads the RoPE variable at each call; a choice the user
# made (for RoPE, or for every op) is kept.
LIGER_ROPE_ENV = ("LIGER_KERNEL_IMPL_ROPE", "LIGER_KERNEL_BACKEND_ROPE", "LIGER_KERNEL_IMPL", "LIGER_KERNEL_BACKEND")
LIGER_ROPE_KERNEL = "nvidia-triton"


def pin_liger_rope(env=None) -> str:
    """Route Liger's RoPE to its Triton kernel unless the environment (the process's by default) names one;
    returns the choice."""
    env = os.environ if env is None else env
    for name in LIGER_ROPE_ENV:
        if env.get(name):
            return f"{env[name]} ({name} given)"
    env[LIGER_ROPE_ENV[0]] = LIGER_ROPE_KERNEL
    return f"{LIGER_ROPE_KERNEL} (one compile for every sequence length)"


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
    return triton_toolchain_problem()


def apply_liger(model, speed_args, causal_lm: bool, layers_compiled: bool = False) -> dict:
    """Patch the base model (before LoRA wraps it) with Liger's fused kernels; returns what was done.

    ``layers_compiled``: the decoder layers go through torch.compile (train/regional_compile.py), which
    fuses norms, RoPE and SwiGLU itself; only the fused linear + cross-entropy is applied then.
    """
    if not speed_args.liger_kernels:
        return {"applied": False, "reason": "--liger_kernels False"}
    reason = liger_unavailable_reason(model)
    if reason:
        log.info("liger kernels skipped: %s", reason)
        return {"applied": False, "reason": reason}
    if layers_compiled and not causal_lm:
        log.info("liger kernels not applied: the compiled layers fuse norms, RoPE and the MLP")
        return {"applied": False, "reason": "the compiled decoder layers fuse what Liger would; no causal-LM loss"}
    from liger_kernel.transformers.monkey_patch import _apply_liger_kernel_to_instance

    in_layers = not layers_compiled
    # The fused linear + cross-entropy never materialises the logits; it only fits causal-LM heads.
    _apply_liger_kernel_to_instance(model=model, fused_linear_cross_entropy=causal_lm, cross_entropy=False,
                                    rms_norm=in_layers, swiglu=in_layers, rope=in_layers,
                                    # Other models' per-layer kernels (Gemma's GeGLU, LayerNorm); Liger drops
                                    # the names a model's patch function does not take.
                                    geglu=in_layers, layer_norm=in_layers)
    kernels = (["RMSNorm", "SwiGLU", "RoPE"] if in_layers else []) + (["fused linear cross-entropy"] if causal_lm else [])
    rope = pin_liger_rope() if in_layers else None
    log.info("liger kernels: %s%s", ", ".join(kernels), f" (RoPE: {rope})" if rope else "")
    return {"applied": True, "fused_loss": causal_lm, "fused_mlp": in_layers, "kernels": kernels, "rope": rope,
            "reason": "liger-kernel installed and the GPU supports it"
                      + ("; the compiled layers fuse the rest" if layers_compiled else "")}
