"""The model and the collator a training job trains with, the speed levers applied in order.

Order matters: fused kernels patch the plain model before LoRA wraps its
linears, and the checkpointing plan needs the trainable parameters LoRA made.
The benchmark (benchmarks/speed_cases.py) calls these same two functions.
"""

from ftimg_jobs.model_setup import apply_lora, load_model
from ftimg_jobs.packed_attention import use_packed_attention
from ftimg_jobs.speed import (
    CountingCollator,
    ThroughputCallback,
    apply_liger,
    choose_collator,
    choose_optimizer,
    padding_free_unavailable_reason,
    plan_checkpointing,
    prepare_for_training,
)


def build_training_model(model_class, model_args, training_args, speed_args, task_type: str,
                         tokens_per_step: int, **config_kwargs) -> tuple:
    """Returns ``(model, attention info, speed notes for run.json)``."""
    model, attention = load_model(model_class, model_args, training_args, **config_kwargs)
    prepare_for_training(model)
    if (speed_args.padding_free and attention["implementation"] == "sdpa"
            and padding_free_unavailable_reason("sdpa") is None and use_packed_attention(model)):
        attention["implementation"] = "sdpa, one causal call per example (packed_attention.py)"
    notes = {"optimizer": choose_optimizer(training_args, model_args, speed_args),
             "liger": apply_liger(model, speed_args, causal_lm=task_type == "CAUSAL_LM")}
    if model_args.use_lora:
        model = apply_lora(model, model_args, training_args, task_type=task_type)
    notes["gradient_checkpointing"] = plan_checkpointing(model, model_args, speed_args, training_args,
                                                         tokens_per_step, notes["liger"])
    return model, attention, notes


def build_collator(pad_collator, speed_args, attention: dict, training_args, notes: dict) -> tuple:
    """Returns ``(collator, throughput callback)``; the callback counts the real tokens the collator saw."""
    collator, notes["batches"] = choose_collator(pad_collator, speed_args, attention)
    counting = CountingCollator(collator)
    return counting, ThroughputCallback(counting, training_args.gradient_accumulation_steps)
