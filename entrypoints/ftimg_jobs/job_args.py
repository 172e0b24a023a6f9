"""Flags shared by the training jobs, and parsing: catalogue defaults < YAML config < CLI flags."""

import importlib.util
import os
import sys
from dataclasses import dataclass, field, fields
from typing import List, Optional

import torch
from transformers import HfArgumentParser

from ftimg_jobs.attention import CHOICES as ATTENTION_CHOICES
from ftimg_jobs.catalogue import find_job, load_catalogue
from ftimg_jobs.config_args import assemble_argv, flag_value, precision_tokens
from ftimg_jobs.errors import JobError
from ftimg_jobs.launch import BACKEND_ENV
from ftimg_jobs.paths import DEEPSPEED_DIR, default_model_path
from ftimg_jobs.torch_compat import ensure_cpu_set_device

# Defaults every training job starts from; the catalogue entry, YAML and CLI override them.
COMMON_TRAINING_DEFAULTS = {
    "report_to": "tensorboard",
    "logging_steps": 1,
    "save_strategy": "steps",
    "resume_from_checkpoint": "auto",
}


@dataclass
class ModelArguments:
    """The base model, how it is adapted (LoRA / QLoRA / full) and its attention kernel."""

    model_name_or_path: str = field(default_factory=default_model_path, metadata={
        "help": "Local model directory (default: the embedded tiny model, env FTIMG_DEFAULT_MODEL)."})
    use_lora: bool = field(default=True, metadata={"help": "Train LoRA adapters instead of all weights."})
    q_lora: bool = field(default=False, metadata={
        "help": "Quantize the frozen base to 4-bit NF4 (double quant) under the LoRA adapters; needs a CUDA GPU."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: Optional[List[str]] = field(default=None, metadata={
        "help": "Module names to adapt (e.g. q_proj v_proj); default: every linear layer except the output head."})
    flash_attn: bool = field(default=False, metadata={
        "help": "Ask for flash-attn 2; falls back to SDPA with a warning when it cannot be used."})
    attn_implementation: str = field(default="auto", metadata={
        "help": "auto (flash-attn 2 if usable, else SDPA), flash_attention_2 (required), sdpa or eager.",
        "choices": list(ATTENTION_CHOICES)})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow the model's own Python code."})


def dataclass_flag_names(dataclass_types) -> set:
    return {f.name for dataclass_type in dataclass_types for f in fields(dataclass_type) if f.init}


def parse_job_args(job: str, argv: list, dataclass_types: tuple) -> tuple:
    """Parse a training job's argv into the given dataclasses (the last one is TrainingArguments).

    Returns ``(dataclass instances..., precision note or None)``.
    """
    spec = find_job(load_catalogue(), job)
    parser = HfArgumentParser(dataclass_types)
    if any(token in ("-h", "--help") for token in argv):
        parser.prog = f"python -m ftimg_jobs {job}"
        parser.print_help()
        sys.exit(0)
    defaults = {"output_dir": f"output/{job}", **COMMON_TRAINING_DEFAULTS, **spec.defaults}
    tokens = assemble_argv(defaults, argv, dataclass_flag_names(dataclass_types), DEEPSPEED_DIR)
    cuda = torch.cuda.is_available()
    tokens, note = precision_tokens(tokens, cuda, cuda and torch.cuda.is_bf16_supported())
    if os.environ.get(BACKEND_ENV) and flag_value(tokens, "ddp_backend") is None:
        tokens += ["--ddp_backend", os.environ[BACKEND_ENV]]
    ensure_cpu_set_device()
    *parsed, remaining = parser.parse_args_into_dataclasses(args=tokens, return_remaining_strings=True)
    if remaining:
        raise JobError(f"unexpected argument(s): {' '.join(remaining)}. Flags take the form --name value; "
                       "a YAML config file may only come first")
    training_args = parsed[-1]
    if training_args.gradient_checkpointing and not training_args.gradient_checkpointing_kwargs:
        # Non-reentrant checkpointing works with frozen inputs (LoRA) without extra hooks.
        training_args.gradient_checkpointing_kwargs = {"use_reentrant": False}
    return (*parsed, note)


def validate_model_args(job: str, model_args: ModelArguments, training_args) -> None:
    """Collect every incompatible combination and raise once, each with its fix."""
    problems = []
    if model_args.q_lora and not model_args.use_lora:
        problems.append("--q_lora True needs LoRA adapters: use the qlora-* job or --use_lora True")
    if model_args.q_lora and importlib.util.find_spec("bitsandbytes") is None:
        problems.append(f"{job} needs the bitsandbytes package for 4-bit weights and it is not installed; "
                        f"use an ftimg image (it ships bitsandbytes) or {job.replace('qlora', 'lora')}")
    elif model_args.q_lora and not torch.cuda.is_available():
        problems.append(f"{job} quantizes the model to 4-bit with bitsandbytes, which needs a CUDA GPU and none "
                        f"is visible; use {job.replace('qlora', 'lora')} on CPU, or pass --gpus to the container")
    deepspeed_config = str(training_args.deepspeed or "")
    if model_args.q_lora and "zero3" in os.path.basename(deepspeed_config):
        problems.append("QLoRA cannot be combined with ZeRO-3 (4-bit weights cannot be sharded): use --deepspeed zero2")
    if not os.path.isdir(model_args.model_name_or_path) and model_args.model_name_or_path == default_model_path():
        problems.append(f"no --model_name_or_path given and the default tiny model is missing at "
                        f"{model_args.model_name_or_path}; create it with "
                        f"'python -m ftimg_jobs.tiny_model {model_args.model_name_or_path}' or set FTIMG_DEFAULT_MODEL")
    if problems:
        raise JobError("invalid settings:\n  - " + "\n  - ".join(problems))
