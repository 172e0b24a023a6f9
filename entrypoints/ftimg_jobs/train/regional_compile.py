"""Regional compilation: each decoder layer's forward through torch.compile, the attention call left out.

A training step of a 7B model launches tens of thousands of small kernels (norms, RoPE, SwiGLU,
every LoRA adapter's matmuls, scale and add), each after a Python call. On a GPU host with a slow
CPU the GPU waits for them. Compiling the decoder layer fuses the pointwise work and runs each
layer's pieces from one graph. Every layer of a model has the same code and shapes, so one
compile serves all of them (torch 2.5+ keeps module parameters as graph inputs, not constants).

Liger's per-layer kernels (RMSNorm, SwiGLU, RoPE) are not applied under compilation: inductor
fuses those operations itself and Liger's autograd functions would cut the graph. Its fused
linear + cross-entropy, outside the layers, stays. The attention function (FlashAttention-4's
CuTe kernels, or the per-example SDPA of padding-free rows) runs eagerly between two graphs.
"""

import logging

import torch

from ftimg_jobs.model import flash4_attention, packed_attention

log = logging.getLogger("ftimg_jobs")

# Attention functions registered by the jobs that dynamo must not trace into.
EAGER_ATTENTION = {flash4_attention.NAME: flash4_attention.flash4_attention,
                   packed_attention.NAME: packed_attention.packed_causal_attention}
# One graph per distinct input shape: fixed-length rows compile once, variable rows once more
# (dynamic), cls widths likewise; the limit only has to cover the layers' shared entries.
RECOMPILE_LIMIT = 64


def compile_unavailable_reason(speed_args) -> str:
    if not speed_args.compile_layers:
        return "--compile_layers False"
    if not torch.cuda.is_available():
        return "no GPU: the CPU keeps the eager layers"
    if not hasattr(torch.compiler, "disable") or not hasattr(torch.nn.Module, "compile"):
        return f"torch {torch.__version__} has no regional compilation (torch 2.5+)"
    return ""


def keep_attention_eager(model) -> None:
    """Re-register the model's attention function (if the jobs registered it) behind torch.compiler.disable."""
    name = model.config._attn_implementation
    if name not in EAGER_ATTENTION:
        return  # transformers' own SDPA and eager attention trace cleanly
    from transformers import AttentionInterface

    AttentionInterface.register(name, torch.compiler.disable(EAGER_ATTENTION[name]))


def compile_layers(layers: list, model, backend: str = "inductor") -> None:
    """Replace each layer's forward with its compiled form, before any checkpoint wrapper is put around it."""
    keep_attention_eager(model)
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, RECOMPILE_LIMIT)
    for layer in layers:
        layer.forward = torch.compile(layer.forward, backend=backend)


def apply_regional_compile(model, layers: list, speed_args) -> dict:
    reason = compile_unavailable_reason(speed_args)
    if reason:
        return {"applied": False, "reason": reason}
    compile_layers(layers, model)
    log.info("torch.compile: %d decoder layers (attention left eager); the first step compiles", len(layers))
    return {"applied": True, "layers": len(layers), "reason": "--compile_layers True"}
