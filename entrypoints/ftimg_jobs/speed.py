"""Speed and memory levers of the training jobs: fused kernels, padding-free batches, partial checkpointing.

The defaults are the fast settings; the memory savers are a flag away:
``--gradient_checkpointing True`` checkpoints every decoder layer, and
``--gpu_memory_budget_gib N`` makes the automatic choice fit N GiB.
A lever this stack cannot use (the image's default profile has torch 2.1 and
transformers 4.46, and no liger-kernel) is skipped, and the reason is logged
and written to run.json. docs/performance.md has the measurements behind each.
"""

import importlib.util
import logging
import time
from dataclasses import dataclass, field

import torch
from transformers import TrainerCallback

from ftimg_jobs.attention import FLASH
from ftimg_jobs.layer_budget import (
    GIB,
    ModelShape,
    StepMemory,
    allocator_reserve_bytes,
    describe_plan,
    layer_activation_bytes,
    layers_to_checkpoint,
    loss_workspace_bytes,
)
from ftimg_jobs.packing import flatten_examples, real_token_count

log = logging.getLogger("ftimg_jobs")

AUTO = -1
# The automatic budget leaves this share of the GPU to other processes and the allocator's caching.
DEFAULT_BUDGET_SHARE = 0.9
OPTIMIZER_STATE_BYTES = {"adamw_bnb_8bit": 2, "paged_adamw_8bit": 2, "adamw_8bit": 2, "sgd": 0, "adafactor": 4}
ADAMW_STATE_BYTES = 8
EIGHT_BIT_OPTIMIZER = "paged_adamw_8bit"


@dataclass
class SpeedArguments:
    """How fast versus how lean a training step is."""

    padding_free: bool = field(default=True, metadata={
        "help": "Lay each batch's examples end to end in one row with restarting position ids: no padding is "
                "computed and attention stays within each example (needs flash-attn 2 or transformers 4.53+)."})
    liger_kernels: bool = field(default=True, metadata={
        "help": "Fused Triton kernels (RMSNorm, SwiGLU, RoPE, linear + cross-entropy) when liger-kernel is installed."})
    gradient_checkpointing_layers: int = field(default=AUTO, metadata={
        "help": "Decoder layers to checkpoint: -1 picks the fewest that fit --gpu_memory_budget_gib; "
                "--gradient_checkpointing True checkpoints them all."})
    gpu_memory_budget_gib: float = field(default=0.0, metadata={
        "help": "GPU memory the automatic checkpointing choice may plan for (0: 90%% of the GPU's memory)."})
    eight_bit_optimizer: bool = field(default=True, metadata={
        "help": "Full fine-tuning on a GPU: use bitsandbytes' paged 8-bit AdamW when --optim is left at its "
                "default (a quarter of AdamW's state memory)."})


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


def padding_free_unavailable_reason(attention_implementation: str):
    if attention_implementation == FLASH or attention_implementation.startswith("sdpa, one causal call"):
        return None
    try:
        from transformers.masking_utils import find_packed_sequence_indices  # noqa: F401
    except ImportError:
        import transformers

        return (f"transformers {transformers.__version__} with {attention_implementation} attention would let "
                "packed examples attend to each other (needs flash-attn 2 or transformers 4.53+)")
    return None


class PaddingFreeCollator:
    """One row per batch, examples end to end, no attention mask: see packing.py."""

    def __call__(self, features):
        row = flatten_examples(features)
        return {key: torch.tensor([values], dtype=torch.long) for key, values in row.items()}


class CountingCollator:
    """Wraps a collator and queues each batch's real (non-padding) token count for ThroughputCallback."""

    def __init__(self, collator):
        self.collator = collator
        self.token_counts = []

    def __call__(self, features):
        self.token_counts.append(real_token_count(features))
        return self.collator(features)


class ThroughputCallback(TrainerCallback):
    """Seconds and real tokens of every optimizer step; ``summary()`` goes to run.json.

    Steps are timed end to end (data, forward, backward, optimizer) after a device
    synchronisation. Batches are counted in the order the dataloader made them,
    which is the order the steps consume them.
    """

    def __init__(self, counting_collator: CountingCollator, gradient_accumulation_steps: int):
        self.counting = counting_collator
        self.accumulation = gradient_accumulation_steps
        self.steps = []
        self.last = None

    @staticmethod
    def now():
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self.last = self.now()

    def on_step_end(self, args, state, control, **kwargs):
        now = self.now()
        tokens = sum(self.counting.token_counts.pop(0) for _ in range(self.accumulation)
                     if self.counting.token_counts)
        self.steps.append({"seconds": now - self.last, "tokens": tokens})
        self.last = now

    def summary(self, warmup_steps: int = 2) -> dict:
        measured = self.steps[warmup_steps:] or self.steps
        if not measured:
            return {}
        rates = sorted(step["tokens"] / step["seconds"] for step in measured)
        seconds = sum(step["seconds"] for step in measured)
        return {"steps_measured": len(measured),
                "median_tokens_per_second": rates[len(rates) // 2],
                "tokens_per_second": sum(step["tokens"] for step in measured) / seconds}


def choose_collator(pad_collator, speed_args, attention: dict) -> tuple:
    """``(collator, note)``: padding-free when the attention kernel keeps examples apart, else ``pad_collator``."""
    if not speed_args.padding_free:
        return pad_collator, {"padding_free": False, "reason": "--padding_free False"}
    reason = padding_free_unavailable_reason(attention["implementation"])
    if reason:
        log.info("padding-free batches skipped: %s; padding each batch to its longest example", reason)
        return pad_collator, {"padding_free": False, "reason": reason}
    return PaddingFreeCollator(), {"padding_free": True, "reason": f"{attention['implementation']} attention "
                                                                   "separates examples by position ids"}


def choose_optimizer(training_args, model_args, speed_args) -> dict:
    """Full fine-tuning: AdamW's two fp32 states are 8 bytes a weight; 8-bit AdamW needs 2."""
    default_optim = type(training_args).__dataclass_fields__["optim"].default
    optim_value = getattr(training_args.optim, "value", training_args.optim)
    if model_args.use_lora:
        return {"optim": optim_value, "reason": "LoRA: the optimizer state is small"}
    if not speed_args.eight_bit_optimizer or training_args.deepspeed:
        return {"optim": optim_value, "reason": "--eight_bit_optimizer False or --deepspeed given"}
    if optim_value != getattr(default_optim, "value", default_optim):
        return {"optim": optim_value, "reason": "--optim given"}
    if not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None:
        return {"optim": optim_value, "reason": "8-bit AdamW needs bitsandbytes and a CUDA GPU"}
    training_args.optim = EIGHT_BIT_OPTIMIZER
    log.info("optimizer: %s (full fine-tuning; --optim adamw_torch keeps fp32 AdamW state)", EIGHT_BIT_OPTIMIZER)
    return {"optim": EIGHT_BIT_OPTIMIZER, "reason": "full fine-tuning on a GPU: a quarter of AdamW's state"}


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


def step_memory(model, shape: ModelShape, tokens: int, budget_bytes: int, optim: str, fused_loss: bool,
                lora_dropout: bool, fused_mlp: bool) -> StepMemory:
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    weights += sum(b.numel() * b.element_size() for b in model.buffers())
    trainable = [p for p in model.parameters() if p.requires_grad]
    gradients = sum(p.numel() * p.element_size() for p in trainable)
    optimizer = sum(p.numel() for p in trainable) * OPTIMIZER_STATE_BYTES.get(optim, ADAMW_STATE_BYTES)
    # Autocast keeps a half-precision copy of every fp32 weight it casts until the forward pass ends.
    autocast_copies = sum(p.numel() * 2 for p in trainable if p.dtype == torch.float32)
    fixed = (weights + gradients + optimizer + autocast_copies + loss_workspace_bytes(shape, tokens, fused_loss)
             + allocator_reserve_bytes(budget_bytes))
    return StepMemory(fixed_bytes=fixed,
                      layer_bytes=layer_activation_bytes(shape, tokens, lora_dropout, fused_mlp),
                      checkpoint_bytes=tokens * shape.hidden_size * 2)


def budget_bytes(speed_args) -> int:
    if speed_args.gpu_memory_budget_gib > 0:
        return int(speed_args.gpu_memory_budget_gib * GIB)
    return int(torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory * DEFAULT_BUDGET_SHARE)


def plan_checkpointing(model, model_args, speed_args, training_args, tokens_per_step: int, liger: dict) -> dict:
    """Checkpoint the fewest decoder layers that keep a step within the memory budget; returns the plan."""
    if training_args.gradient_checkpointing:
        return {"layers": "all", "reason": "--gradient_checkpointing True"}
    layers = decoder_layers(model)
    if not layers:
        return {"layers": 0, "reason": "no list of decoder layers found in this model"}
    requested = speed_args.gradient_checkpointing_layers
    if requested == AUTO:
        if not torch.cuda.is_available():
            return {"layers": 0, "reason": "no GPU: nothing to fit"}
        if training_args.deepspeed:
            return {"layers": 0, "reason": "DeepSpeed shards memory; pass --gradient_checkpointing True to save more"}
        budget = budget_bytes(speed_args)
        memory = step_memory(model, model_shape(model.config), tokens_per_step, budget,
                             optim=getattr(training_args.optim, "value", training_args.optim),
                             fused_loss=liger.get("fused_loss", False),
                             lora_dropout=model_args.use_lora and model_args.lora_dropout > 0,
                             fused_mlp=liger.get("applied", False))
        count = layers_to_checkpoint(len(layers), budget, memory)
        reason = describe_plan(count, len(layers), budget, memory)
    else:
        count = max(0, min(requested, len(layers)))
        reason = f"--gradient_checkpointing_layers {requested}"
    for layer in layers[:count]:
        checkpoint_layer(layer)
    log.info("gradient checkpointing: %s", reason)
    return {"layers": count, "of": len(layers), "reason": reason}


def prepare_for_training(model) -> None:
    """Training never reads the KV cache; without it transformers 5 can see packed examples in position ids."""
    model.config.use_cache = False
