"""Regional compilation: each decoder layer's forward through torch.compile, the attention call left out.

A training step of a 7B model launches thousands of small kernels (norms, RoPE, SwiGLU, every
LoRA adapter's matmuls, scale and add), each after a Python call, and the host CPUs of GPU
machines are slow: traced on an H200 (benchmarks/speed_profile.py, docs/performance.md), the GPU
was busy for 65-81% of a plain Trainer + PEFT step and for about 60% of an eager ftimg LoRA/QLoRA
step. Compiling the decoder layer fuses the pointwise work and runs each layer's pieces from one
graph. Every layer of a model has the same code and shapes, so one compile serves all of them
(torch 2.5+ keeps module parameters as graph inputs, not constants); run.json records the graph count.

Liger's per-layer kernels (RMSNorm, SwiGLU, RoPE) are not applied under compilation: inductor
fuses those operations itself and Liger's autograd functions would cut the graph. Its fused
linear + cross-entropy, outside the layers, stays. The attention function (FlashAttention-4's
CuTe kernels, or the per-example SDPA of padding-free rows) runs eagerly between two graphs.
"""

import logging
from typing import Optional

import torch
from transformers import TrainerCallback

from ftimg_jobs.model import flash4_attention, packed_attention
from ftimg_jobs.train.toolchain import triton_toolchain_problem

log = logging.getLogger("ftimg_jobs")

# Attention functions registered by the jobs that dynamo must not trace into.
EAGER_ATTENTION = {flash4_attention.NAME: flash4_attention.flash4_attention,
                   packed_attention.NAME: packed_attention.packed_causal_attention}
# Entries per compiled code object: one per input shape class (fixed rows compile once, variable rows
# once more as dynamic), per requires_grad of the layer's input; the layers share them.
RECOMPILE_LIMIT = 64
OLDEST_TORCH = (2, 5)
# Model types whose compiled layers were measured (docs/performance.md: the Llama-2-7B shape). Others,
# whose layers may graph-break or recompile in ways not seen yet, compile when asked to.
MEASURED_MODEL_TYPES = {"llama"}


def measured_default(task_type_is_causal_lm: bool, deepspeed, model_type: str) -> Optional[str]:
    """Why the unset flag leaves this job's layers eager (None: it compiles them): the measured case only."""
    if not task_type_is_causal_lm:
        return "off by default for cls (not measured yet); --compile_layers True turns it on"
    if deepspeed:
        return "off by default under DeepSpeed (not measured with it); --compile_layers True turns it on"
    if model_type not in MEASURED_MODEL_TYPES:
        return (f"off by default for model type {model_type!r} (measured for {', '.join(sorted(MEASURED_MODEL_TYPES))}"
                " only); --compile_layers True turns it on")
    return None


def torch_version() -> tuple:
    return tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])


def compile_unavailable_reason(speed_args, default_off_reason: Optional[str]) -> Optional[str]:
    """Why the layers stay eager (None: compile them). ``default_off_reason``: measured_default's answer,
    which decides only when the flag is unset."""
    if speed_args.compile_layers is False:
        return "--compile_layers False"
    if speed_args.compile_layers is None and default_off_reason:
        return default_off_reason
    if not torch.cuda.is_available():
        return "no GPU: the CPU keeps the eager layers"
    if torch_version() < OLDEST_TORCH:
        return f"torch {torch.__version__} compiles each layer separately; regional compilation needs torch 2.5+"
    return triton_toolchain_problem()


def keep_attention_eager(model) -> None:
    """Re-register the model's attention function (if the jobs registered it) behind torch.compiler.disable."""
    name = model.config._attn_implementation
    if name not in EAGER_ATTENTION:
        return  # transformers' own SDPA and eager attention trace cleanly
    from transformers import AttentionInterface

    AttentionInterface.register(name, torch.compiler.disable(EAGER_ATTENTION[name]))


def compile_layers(layers: list, model, backend: str = "inductor", fall_back_to_eager: bool = False) -> None:
    """Replace each layer's forward with its compiled form, before any checkpoint wrapper is put around it.

    ``fall_back_to_eager``: a layer whose forward graph fails to compile runs eagerly, with torch's
    warning in the log, instead of ending the run (the default-on case: a speed lever must not break a
    job that the eager layers train; an explicit --compile_layers True lets the error through). The
    backward graph compiles at the first backward pass, where a failure still ends the run.
    """
    keep_attention_eager(model)
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, RECOMPILE_LIMIT)
    torch._dynamo.config.suppress_errors = fall_back_to_eager
    for layer in layers:
        layer.forward = torch.compile(layer.forward, backend=backend)


def apply_regional_compile(model, layers: list, reason: Optional[str], requested: Optional[bool] = None) -> dict:
    """``reason``: compile_unavailable_reason's answer, worked out before Liger was applied; ``requested``:
    --compile_layers as given (None: the job's default)."""
    if reason:
        log.info("decoder layers stay eager: %s", reason)
        return {"applied": False, "reason": reason}
    compile_layers(layers, model, fall_back_to_eager=requested is None)
    log.info("torch.compile: %d decoder layers (attention left eager); the first steps compile", len(layers))
    return {"applied": True, "layers": len(layers),
            "reason": "--compile_layers True" if requested else
                      "the default for sft on this GPU; a layer that fails to compile runs eagerly"}


def set_partition_fraction(fraction: float) -> None:
    """The share of a compiled layer's activations its graphs keep for backward (torch's activation memory
    budget: 1.0 is the partitioner's default choice, lower recomputes the cheapest of them in backward). Read
    when a graph compiles, at the first step; set by every job whose layers compile (1.0 where its plan keeps
    the default), so that a job never compiles under an earlier job's fraction in the same process."""
    import torch._functorch.config as functorch_config

    if hasattr(functorch_config, "activation_memory_budget"):  # torch 2.4+
        functorch_config.activation_memory_budget = fraction


def compile_outcome() -> dict:
    """What compiling did in this process, for run.json after training: the graphs made (shared by the
    layers; 0 means every layer fell back to eager) and the frames dynamo was handed."""
    from torch._dynamo.utils import counters

    return {"graphs": counters["stats"]["unique_graphs"], "frames": counters["frames"]["total"]}


class CompileFallbackCheck(TrainerCallback):
    """After the first optimizer step, warns where every layer fell back to eager (a compile error, logged by
    torch above): the memory plan counted compiled layers, which keep less for backward, and may have lowered
    their partition fraction, so the eager layers can need more GPU memory than the budget."""

    def __init__(self, plan: dict):
        self.plan = plan
        self.checked = False

    def on_step_end(self, args, state, control, **kwargs):
        if self.checked:
            return
        self.checked = True
        if compile_outcome()["graphs"]:
            return
        fraction = self.plan.get("partition_fraction")
        assumed = f" at partition fraction {fraction}" if fraction else ""
        log.warning("every decoder layer fell back to eager after a compile error (above); the memory plan counted "
                    "compiled layers%s, so this run may need more GPU memory than planned. Pass --compile_layers "
                    "False to plan for eager layers.", assumed)


def compile_checks(notes: dict) -> list:
    """The Trainer callbacks that watch the compiled layers (none where they stay eager)."""
    if not notes["compile"]["applied"]:
        return []
    return [CompileFallbackCheck(notes.get("gradient_checkpointing", {}))]
