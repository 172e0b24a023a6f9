"""How many decoder layers to checkpoint so that training fits a GPU memory budget (torch-free).

Gradient checkpointing is usually all or nothing: every layer recomputes its
forward pass during backward (about a third more compute) even when half the
layers' activations would have fit. Here the memory a step needs is estimated
from the model's shape, and only as many layers are checkpointed as the budget
requires; the rest keep their activations. Compiled layers have a cheaper lever
first: the compiler's partitioner can keep less of every layer and recompute the
cheap part (plan_layers weighs the two).

The per-layer activation count is in units of one bf16 vector of the hidden
(or MLP) width per token, counted from what a Llama-style layer saves for
backward, and checked against peak memory measured on an H100 (docs/performance.md).
"""

from dataclasses import dataclass, replace

GIB = 1024 ** 3

# Tensors a decoder layer keeps for backward, per token, in vectors of the hidden width:
# norm inputs, q/k/v after RoPE, attention output, o_proj input. Calibrated on two measurements
# of the Llama-2-7B shape at 4,096 tokens: with LoRA dropout 0.05 the H100 showed 0.72 GiB a
# layer (the count from the code, 9 + 9, overestimated it by a quarter); with dropout 0 the H200
# showed about 0.52 GiB (fixed-length rows, FlashAttention-4, Liger), so dropout saves less than its
# copies suggest: 6.5 + 6 vectors here once put a 24 GiB budget's peak at 25.0 GiB.
ATTENTION_VECTORS = 9.25
# LoRA dropout copies its input once per adapted linear (q, k, v, o, gate, up) and keeps a mask.
LORA_DROPOUT_HIDDEN_VECTORS = 3.25
# MLP tensors of the intermediate width: gate and up outputs, SiLU output, down_proj input.
# A fused SwiGLU kernel recomputes the SiLU output instead of keeping it.
MLP_VECTORS = 4.0
FUSED_MLP_VECTORS = 3.0
LORA_DROPOUT_MLP_VECTORS = 1.5
# Unfused loss: bf16 logits, their fp32 copy and the fp32 gradient, per token and vocabulary entry.
LOGIT_BYTES = 10
# A fused linear cross-entropy kernel works through the logits in chunks of this size.
FUSED_LOSS_BYTES = 512 * 1024 ** 2

# Compiled layers: the attention kernel runs between two graphs and keeps q, k, v and its output itself; the
# rest of a layer's activations are what the compiler's partitioner chose to save, and torch's activation
# memory budget (a fraction: 1.0 saves its default choice) has it recompute the cheapest of them in backward
# instead. Measured on an H200 (LoRA bf16, the Llama-2-7B shape at 4,096 tokens, no layer checkpointed;
# docs/performance.md): the peaks at fractions 1.0 and 0.5 (30.4 and 24.4 GiB) lie 1.4 and 0.8 GiB under the step
# estimate that scales what is outside these four vectors by the fraction; at 0.3 the run's peak (21.8) equals two
# other plans' to the MiB, so something outside the step likely set it and it only bounds the step (estimate 22.5). Between those points the partitioner's
# choice moves in steps (0.4 kept as much as 0.5; benchmarks/partition_memory.py finds the same levels on a CPU),
# so only the measured fractions are planned with.
ATTENTION_KERNEL_VECTORS = 4.0
PARTITION_FRACTIONS = (1.0, 0.5, 0.3)
# Step time each costs, in units of one layer's forward + backward, from the same measurements (one shape: LoRA at
# 4,096 tokens; a full fine-tuning layer's backward also makes weight gradients, so recompute costs it less):
# checkpointing a layer replays its forward (about half of a LoRA layer's time: its backward computes no weight
# gradients); the partitioner's recompute at fraction f cost 6.5% (0.5) and 11.5% (0.3) of the step, about
# 0.165 of a layer per unit of (1 - f) in every layer.
RECOMPUTE_LAYER_COST = 0.53
PARTITION_RECOMPUTE_COST = 0.165


@dataclass(frozen=True)
class ModelShape:
    num_layers: int
    hidden_size: int
    intermediate_size: int
    vocab_size: int


@dataclass(frozen=True)
class StepMemory:
    """What one training step keeps in GPU memory besides the decoder layers' activations."""

    fixed_bytes: int        # weights, optimizer state, gradients outside the decoder layers, loss workspace, reserve
    layer_bytes: int        # activations of one decoder layer that is not checkpointed
    checkpoint_bytes: int   # what a checkpointed layer keeps: its input
    layer_gradient_bytes: int = 0  # gradients of one decoder layer's trainable weights (all of them: full fine-tuning)
    partitioned_bytes: int = 0  # the part of layer_bytes a compiled layer's partitioner may recompute (0: eager)


@dataclass(frozen=True)
class LayerPlan:
    checkpointed: int  # the first this many decoder layers recompute their forward in backward
    partition_fraction: float = 1.0  # torch's activation memory budget for the compiled layers (1.0: its default)


def with_partition_fraction(memory: StepMemory, fraction: float) -> StepMemory:
    """``memory`` with each layer's activations as the partitioner saves them at ``fraction``."""
    kept = memory.layer_bytes - int((1.0 - fraction) * memory.partitioned_bytes)
    return replace(memory, layer_bytes=kept, partitioned_bytes=int(fraction * memory.partitioned_bytes))


def layer_activation_bytes(shape: ModelShape, tokens: int, lora_dropout: bool, fused_mlp: bool,
                           dtype_bytes: int = 2) -> int:
    hidden_vectors = ATTENTION_VECTORS + (LORA_DROPOUT_HIDDEN_VECTORS if lora_dropout else 0.0)
    mlp_vectors = (FUSED_MLP_VECTORS if fused_mlp else MLP_VECTORS) + (LORA_DROPOUT_MLP_VECTORS if lora_dropout else 0.0)
    per_token = hidden_vectors * shape.hidden_size + mlp_vectors * shape.intermediate_size
    return int(tokens * per_token * dtype_bytes)


def loss_workspace_bytes(shape: ModelShape, tokens: int, fused_loss: bool) -> int:
    return FUSED_LOSS_BYTES if fused_loss else tokens * shape.vocab_size * LOGIT_BYTES


def step_peak_bytes(num_layers: int, checkpointed: int, memory: StepMemory, accumulating: bool = False) -> int:
    """Peak memory of a step whose first ``checkpointed`` decoder layers are checkpointed.

    Two moments compete. When backward starts, every layer holds its activations (a checkpointed one only its
    input); the recompute of a checkpointed layer, which happens later, is counted here too, as the calibration
    of the per-layer figures assumed. No layer has gradients yet: the Trainer frees them after each optimizer
    step, unless gradients are being accumulated (``accumulating``: every micro-batch after the first starts
    backward with all of them). As backward walks down the layers, each layer's activations give way to its
    weights' gradients: for LoRA these are tiny, for full fine-tuning they outweigh the activations, so the peak
    comes at the end of backward with every layer's gradients present.
    """
    activations = [memory.checkpoint_bytes if index < checkpointed else memory.layer_bytes
                   for index in range(num_layers)]
    backward_start = sum(activations) + (memory.layer_bytes if checkpointed else 0)
    if accumulating:
        return memory.fixed_bytes + backward_start + num_layers * memory.layer_gradient_bytes
    latest, held = 0, sum(activations)
    for index in reversed(range(num_layers)):  # backward reaches layer ``index``
        recompute = memory.layer_bytes if index < checkpointed else 0
        gradients_done = (num_layers - 1 - index) * memory.layer_gradient_bytes
        latest = max(latest, held + recompute + gradients_done + memory.layer_gradient_bytes)
        held -= activations[index]
    return memory.fixed_bytes + max(backward_start, latest)


def layers_to_checkpoint(num_layers: int, budget_bytes: int, memory: StepMemory, accumulating: bool = False) -> int:
    """The fewest layers to checkpoint so the step's peak (step_peak_bytes) stays within ``budget_bytes``.
    Returns all of them when even that does not fit: checkpointing everything is the most this lever can save."""
    for checkpointed in range(num_layers + 1):
        if step_peak_bytes(num_layers, checkpointed, memory, accumulating) <= budget_bytes:
            return checkpointed
    return num_layers


def plan_layers(num_layers: int, budget_bytes: int, memory: StepMemory, accumulating: bool = False) -> LayerPlan:
    """The cheapest way to fit ``budget_bytes``: checkpointed layers and, for compiled layers, a lower partition
    fraction. A lower fraction costs less per GiB saved than a checkpointed layer, down to the lowest measured;
    where even that needs checkpointed layers, both are weighed (RECOMPUTE_LAYER_COST, PARTITION_RECOMPUTE_COST).
    Eager layers (no partitioned bytes) keep fraction 1.0 and only the checkpoint count is chosen."""
    fractions = PARTITION_FRACTIONS if memory.partitioned_bytes else (1.0,)
    best, best_cost = None, float("inf")
    for fraction in fractions:
        scaled = with_partition_fraction(memory, fraction)
        checkpointed = layers_to_checkpoint(num_layers, budget_bytes, scaled, accumulating)
        if step_peak_bytes(num_layers, checkpointed, scaled, accumulating) > budget_bytes:
            continue
        cost = checkpointed * RECOMPUTE_LAYER_COST + num_layers * (1.0 - fraction) * PARTITION_RECOMPUTE_COST
        if cost < best_cost - 1e-9:
            best, best_cost = LayerPlan(checkpointed, fraction), cost
    return best or LayerPlan(num_layers)


def allocator_reserve_bytes(budget_bytes: int) -> int:
    """Headroom for the CUDA context, kernels' workspaces and allocator fragmentation."""
    return max(GIB, budget_bytes // 20)


def describe_plan(plan: LayerPlan, num_layers: int, budget_bytes: int, memory: StepMemory,
                  accumulating: bool = False) -> str:
    """``memory``: the step's estimate at fraction 1.0; the plan's partition fraction is applied here."""
    memory = with_partition_fraction(memory, plan.partition_fraction)
    checkpointed = plan.checkpointed
    details = (f"; {memory.layer_gradient_bytes / GIB:.2f} GiB gradients per layer"
               if memory.layer_gradient_bytes >= GIB // 100 else "")
    if plan.partition_fraction < 1.0:
        details += (f"; the compiled layers keep {plan.partition_fraction:.0%} of the activations their graphs "
                    "would save and recompute the cheapest rest in backward (torch's activation memory budget)")
    peak = step_peak_bytes(num_layers, checkpointed, memory, accumulating)
    return (f"checkpointing {checkpointed} of {num_layers} decoder layers to fit {budget_bytes / GIB:.1f} GiB "
            f"(estimated peak {peak / GIB:.1f} GiB: {memory.fixed_bytes / GIB:.1f} GiB weights, optimizer state, "
            f"other gradients, autocast copies, loss and allocator reserve; {memory.layer_bytes / GIB:.2f} GiB "
            f"activations per layer{details})")
