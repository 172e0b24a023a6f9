"""The one model builder of the training jobs (sft and cls): load, speed levers in order, adapters, memory plan.

Order matters: fused kernels patch the plain model before LoRA wraps its
linears, and the checkpointing plan needs the trainable parameters LoRA made.
The benchmark (benchmarks/speed_ftimg.py) calls these same functions.
"""

import logging
from functools import partial
from typing import Optional

from ftimg_jobs.data.collate import RightPadCausalCollator
from ftimg_jobs.model.load import load_training_model
from ftimg_jobs.model.lora import apply_lora, count_parameters
from ftimg_jobs.model.packed_attention import use_packed_attention
from ftimg_jobs.model.sdpa_backends import apply_sdpa_priority
from ftimg_jobs.train.batches import CountingCollator, choose_collator, padding_free_unavailable_reason
from ftimg_jobs.train.checkpointing import decoder_layers, layers_needed, plan_checkpointing, prepare_for_training
from ftimg_jobs.train.garbage_collection import garbage_collection_callbacks
from ftimg_jobs.train.kernels import apply_liger
from ftimg_jobs.train.optimizer import checkpoint_optimizer, choose_optimizer
from ftimg_jobs.train.regional_compile import (apply_regional_compile, compile_checks, compile_unavailable_reason,
                                              measured_default, set_partition_fraction)
from ftimg_jobs.train.throughput import ThroughputCallback

log = logging.getLogger("ftimg_jobs")

CAUSAL_LM = "CAUSAL_LM"


def build_training_model(model_class, model_args, lora_args, training_args, speed_args, task_type: str,
                         tokens_per_step: int, resume_from: Optional[str] = None, **config_kwargs) -> tuple:
    """Returns ``(model, attention info, speed notes for run.json)``. ``resume_from``: the checkpoint the run
    will resume (its optimizer kind is kept)."""
    model, attention = load_training_model(model_class, model_args, lora_args, training_args, **config_kwargs)
    prepare_for_training(model)
    # Padding-free rows only fit causal LMs: a classification head pools the last token of each row.
    if (task_type == CAUSAL_LM and speed_args.padding_free and attention["implementation"] == "sdpa"
            and padding_free_unavailable_reason("sdpa") is None and use_packed_attention(model)):
        attention["implementation"] = "sdpa, one causal call per example (packed_attention.py)"
    # Compiled layers were measured for sft of Llama models (LoRA, QLoRA, full); elsewhere they are a flag away.
    default_off = measured_default(task_type == CAUSAL_LM, training_args.deepspeed, model.config.model_type)
    layers = decoder_layers(model)  # the same modules after LoRA wraps their linears
    no_compile = compile_unavailable_reason(speed_args, default_off) or (
        None if layers else "no list of decoder layers found in this model")
    optimizer_layers = partial(layers_needed, model, speed_args, training_args, tokens_per_step)
    resumed_optim = None if lora_args.use_lora else checkpoint_optimizer(resume_from)
    notes = {"optimizer": choose_optimizer(training_args, lora_args, speed_args, optimizer_layers, resumed_optim),
             "liger": apply_liger(model, speed_args, causal_lm=task_type == CAUSAL_LM,
                                  layers_compiled=no_compile is None),
             "sdpa_backends": apply_sdpa_priority(attention["implementation"])}
    if lora_args.use_lora:
        model = apply_lora(model, lora_args, task_type=task_type)
    # Compiled before the checkpointing plan wraps a layer: its recompute replays the compiled forward.
    notes["compile"] = apply_regional_compile(model, layers, no_compile, speed_args.compile_layers)
    notes["gradient_checkpointing"] = plan_checkpointing(model, lora_args, speed_args, training_args,
                                                         tokens_per_step, notes["liger"],
                                                         compiled=notes["compile"]["applied"])
    if notes["compile"]["applied"]:
        set_partition_fraction(notes["gradient_checkpointing"].get("partition_fraction", 1.0))
    log.info("attention: %s (%s); parameters: %s", attention["implementation"], attention["reason"],
             count_parameters(model))
    return model, attention, notes


def build_collator(pad_collator, speed_args, attention: dict, training_args, notes: dict,
                   task_type: str = CAUSAL_LM) -> tuple:
    """Returns ``(collator, throughput callback)``; the callback counts the real tokens the collator saw."""
    if task_type == CAUSAL_LM:
        collator, notes["batches"] = choose_collator(pad_collator, speed_args, attention)
    elif isinstance(pad_collator, RightPadCausalCollator):
        collator, notes["batches"] = pad_collator, pad_collator.batches_note()
    else:
        collator, notes["batches"] = pad_collator, {
            "padding_free": False, "attention_mask": True,
            "reason": "sequence classification pools the last token of each padded row; the model's attention "
                      "is not causal in every layer, so the padding is masked"}
    counting = CountingCollator(collator)
    return counting, ThroughputCallback(counting, training_args.gradient_accumulation_steps)


def speed_callbacks(speed_args, throughput: ThroughputCallback, notes: dict) -> list:
    """The Trainer callbacks of the speed side: step timing, the garbage collector's freeze, compile checks."""
    return [throughput, *garbage_collection_callbacks(speed_args, notes), *compile_checks(notes)]
