"""Activation checkpointing: the fewest decoder layers whose recompute keeps a step within the memory budget."""

import logging
import os
from typing import Optional

import torch

from ftimg_jobs.args.speed import AUTO_LAYERS
from ftimg_jobs.train.layer_budget import (
    ATTENTION_KERNEL_VECTORS,
    GIB,
    ModelShape,
    StepMemory,
    allocator_reserve_bytes,
    describe_plan,
    layer_activation_bytes,
    layers_to_checkpoint,
    loss_workspace_bytes,
    plan_layers,
    step_peak_bytes,
)

log = logging.getLogger("ftimg_jobs")

# The automatic budget leaves this share of the GPU to other processes and the allocator's caching.
DEFAULT_BUDGET_SHARE = 0.9
OPTIMIZER_STATE_BYTES = {"adamw_bnb_8bit": 2, "paged_adamw_8bit": 2, "adamw_8bit": 2, "sgd": 0, "adafactor": 4}
ADAMW_STATE_BYTES = 8


def decoder_layers(model):
    """The model's list of decoder layers: the ModuleList with num_hidden_layers entries."""
    count = getattr(model.config, "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == count:
            return list(module)
    return []


def checkpoint_layer(layer) -> None:
    """Recompute this layer's forward pass during backward instead of keeping its activations.

    Wrapping the layer itself (not the model's all-layers switch) works the same
    on transformers 4.x and 5.x. Non-reentrant checkpointing needs no input
    gradients (frozen embeddings under LoRA) and replays dropout's random state.
    """
    forward = layer.forward

    def checkpointed_forward(*args, **kwargs):
        if not (layer.training and torch.is_grad_enabled()):
            return forward(*args, **kwargs)
        return torch.utils.checkpoint.checkpoint(forward, *args, use_reentrant=False, **kwargs)

    layer.forward = checkpointed_forward


def model_shape(config) -> ModelShape:
    hidden = config.hidden_size
    return ModelShape(num_layers=config.num_hidden_layers, hidden_size=hidden,
                      intermediate_size=getattr(config, "intermediate_size", None) or 4 * hidden,
                      vocab_size=config.vocab_size)


def trainable_bytes(parameters) -> int:
    """Gradient bytes of ``parameters`` (each counted once: tied weights appear under several modules)."""
    unique = {id(p): p for p in parameters if p.requires_grad}
    return sum(p.numel() * p.element_size() for p in unique.values())


def data_parallel_processes() -> int:
    """Processes of a torchrun/accelerate launch (the launcher's environment: asking torch would start it)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def step_memory(model, shape: ModelShape, tokens: int, budget_bytes: int, optim: str, fused_loss: bool,
                lora_dropout: bool, fused_mlp: bool, deepspeed=None, compiled: bool = False) -> StepMemory:
    """``compiled``: the decoder layers run through torch.compile, whose partitioner may recompute part of
    each layer's activations (layer_budget.plan_layers)."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    weights += sum(b.numel() * b.element_size() for b in model.buffers())
    trainable = [p for p in model.parameters() if p.requires_grad]
    # A decoder layer's gradients appear as backward leaves it (step_peak_bytes); the rest count throughout.
    layers = decoder_layers(model) or []
    layer_gradients = max((trainable_bytes(layer.parameters()) for layer in layers), default=0)
    in_layers = {id(p) for layer in layers for p in layer.parameters()}
    gradients = trainable_bytes(p for p in model.parameters() if id(p) not in in_layers)
    # DDP's reducer keeps its own flat copy of every gradient (accelerate leaves gradient_as_bucket_view off).
    if data_parallel_processes() > 1 and not deepspeed:
        gradients += trainable_bytes(model.parameters())
    optimizer = sum(p.numel() for p in trainable) * OPTIMIZER_STATE_BYTES.get(optim, ADAMW_STATE_BYTES)
    # Autocast keeps a half-precision copy of every fp32 weight it casts until the forward pass ends.
    autocast_copies = sum(p.numel() * 2 for p in trainable if p.dtype == torch.float32)
    fixed = (weights + gradients + optimizer + autocast_copies + loss_workspace_bytes(shape, tokens, fused_loss)
             + allocator_reserve_bytes(budget_bytes))
    layer_bytes = layer_activation_bytes(shape, tokens, lora_dropout, fused_mlp)
    attention_kernel = int(ATTENTION_KERNEL_VECTORS * tokens * shape.hidden_size * 2)
    return StepMemory(fixed_bytes=fixed, layer_bytes=layer_bytes,
                      checkpoint_bytes=tokens * shape.hidden_size * 2, layer_gradient_bytes=layer_gradients,
                      partitioned_bytes=max(0, layer_bytes - attention_kernel) if compiled else 0)


def is_accumulating(training_args) -> bool:
    return (getattr(training_args, "gradient_accumulation_steps", 1) or 1) > 1


def layers_needed(model, speed_args, training_args, tokens_per_step: int, optim: str) -> Optional[int]:
    """Decoder layers a step with optimizer ``optim`` must checkpoint to fit the budget, under the user's own
    checkpointing flags where given; None where it does not fit even so. Unfused loss: asked before the fused
    kernels are chosen."""
    layers = decoder_layers(model) or []
    budget = budget_bytes(speed_args)
    memory = step_memory(model, model_shape(model.config), tokens_per_step, budget, optim=optim, fused_loss=False,
                         lora_dropout=False, fused_mlp=False, deepspeed=training_args.deepspeed)
    accumulating = is_accumulating(training_args)
    count = requested_count(speed_args, training_args, len(layers))
    if count is None:
        count = layers_to_checkpoint(len(layers), budget, memory, accumulating)
    return count if step_peak_bytes(len(layers), count, memory, accumulating) <= budget else None


def requested_count(speed_args, training_args, num_layers: int) -> Optional[int]:
    """The layers the user's flags checkpoint; None where the budget decides (the default)."""
    if training_args.gradient_checkpointing:
        return num_layers
    if speed_args.gradient_checkpointing_layers != AUTO_LAYERS:
        return max(0, min(speed_args.gradient_checkpointing_layers, num_layers))
    return None


def budget_bytes(speed_args) -> int:
    if speed_args.gpu_memory_budget_gib > 0:
        return int(speed_args.gpu_memory_budget_gib * GIB)
    return int(torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory * DEFAULT_BUDGET_SHARE)


def plan_checkpointing(model, lora_args, speed_args, training_args, tokens_per_step: int, liger: dict,
                       compiled: bool = False) -> dict:
    """Checkpoint the fewest decoder layers that keep a step within the memory budget; returns the plan. For
    compiled layers the plan may instead (or also) lower the partitioner's share of activations it keeps
    (``partition_fraction`` below 1.0, for the caller to apply: regional_compile.set_partition_fraction)."""
    if training_args.gradient_checkpointing:
        return {"layers": "all", "reason": "--gradient_checkpointing True"}
    layers = decoder_layers(model)
    if not layers:
        return {"layers": 0, "reason": "no list of decoder layers found in this model"}
    requested = speed_args.gradient_checkpointing_layers
    if requested == AUTO_LAYERS:
        if not torch.cuda.is_available():
            return {"layers": 0, "reason": "no GPU: nothing to fit"}
        if training_args.deepspeed:
            return {"layers": 0, "reason": "DeepSpeed shards memory; pass --gradient_checkpointing True to save more"}
        budget = budget_bytes(speed_args)
        memory = step_memory(model, model_shape(model.config), tokens_per_step, budget,
                             optim=getattr(training_args.optim, "value", training_args.optim),
                             fused_loss=liger.get("fused_loss", False),
                             lora_dropout=lora_args.use_lora and lora_args.lora_dropout > 0,
                             fused_mlp=liger.get("fused_mlp", False) or compiled, compiled=compiled)
        accumulating = is_accumulating(training_args)
        plan = plan_layers(len(layers), budget, memory, accumulating)
        count = plan.checkpointed
        reason = describe_plan(plan, len(layers), budget, memory, accumulating)
    else:
        count = requested_count(speed_args, training_args, len(layers))
        reason = f"--gradient_checkpointing_layers {requested}"
        plan = None
    for layer in layers[:count]:
        checkpoint_layer(layer)
    log.info("gradient checkpointing: %s", reason)
    note = {"layers": count, "of": len(layers), "reason": reason}
    if plan and plan.partition_fraction < 1.0:
        note["partition_fraction"] = plan.partition_fraction
    return note


def prepare_for_training(model) -> None:
    """Training never reads the KV cache; without it transformers 5 can see packed examples in position ids."""
    model.config.use_cache = False
