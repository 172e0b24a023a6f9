"""The one parser of every job's flags: catalogue defaults < YAML config < CLI flags.

A training job (one whose argument classes end with TrainingArguments) also gets
the common training defaults, the precision policy's ``--bf16/--fp16`` and the
launcher's distributed backend. Every job gets its model path filled in: the
adapter's base model when an adapter is given, else the embedded tiny model.
"""

import os
import sys
from dataclasses import dataclass, field, fields

from transformers import HfArgumentParser

from ftimg_jobs.args.config import assemble_argv, flag_value
from ftimg_jobs.catalogue import find_job, load_catalogue
from ftimg_jobs.errors import JobError
from ftimg_jobs.launch import BACKEND_ENV
from ftimg_jobs.model.adapter import adapter_base_model
from ftimg_jobs.model.precision import training_precision_tokens
from ftimg_jobs.paths import DEEPSPEED_DIR, default_model_path
from ftimg_jobs.secrets import clear_secret_fields, say

# Defaults every training job starts from; the catalogue entry, YAML and CLI override them.
COMMON_TRAINING_DEFAULTS = {
    "report_to": "tensorboard",
    "logging_steps": 1,
    # transformers' NaN/inf filter only changes the logged loss, and reads the step's loss back to the host
    # to do it: a device synchronisation each step that leaves the GPU idle while the host then clips the
    # gradients and steps the optimizer. Off, a diverged step shows in the log as nan instead of being hidden.
    "logging_nan_inf_filter": False,
    "save_strategy": "steps",
    "resume_from_checkpoint": "auto",
}


@dataclass
class ParsedArgs:
    """The parsed argument instances in the order asked for, and notes for the log and run.json."""

    instances: tuple
    notes: dict = field(default_factory=dict)

    def of(self, cls):
        """The instance of ``cls`` (or of a subclass of it)."""
        return next(instance for instance in self.instances if isinstance(instance, cls))


def dataclass_flag_names(dataclass_types) -> set:
    return {f.name for dataclass_type in dataclass_types for f in fields(dataclass_type) if f.init}


def training_arguments_class():
    """transformers' TrainingArguments if a job has imported it, else None.

    Only the training jobs import it (their argument classes include it); importing it here
    would cost the inference and merge jobs about two seconds of start-up, since it pulls in peft.
    """
    module = sys.modules.get("transformers.training_args")
    return getattr(module, "TrainingArguments", None)


def is_training(dataclass_types) -> bool:
    training_arguments = training_arguments_class()
    return training_arguments is not None and any(issubclass(cls, training_arguments) for cls in dataclass_types)


def fill_model_path(instances) -> None:
    """``--model_name_or_path`` left out: the adapter's base model, else the embedded tiny model."""
    model = next((i for i in instances if hasattr(i, "model_name_or_path")), None)
    if model is None or model.model_name_or_path:
        return
    adapter = next((i.adapter_name_or_path for i in instances if getattr(i, "adapter_name_or_path", None)), None)
    model.model_name_or_path = adapter_base_model(adapter) if adapter else default_model_path()


def training_tokens(tokens: list) -> tuple:
    """Precision and distributed backend for a training argv; returns ``(tokens, precision note)``."""
    import torch

    from ftimg_jobs.torch_compat import apply_torch_shims

    cuda = torch.cuda.is_available()
    tokens, note = training_precision_tokens(tokens, cuda, cuda and torch.cuda.is_bf16_supported())
    if os.environ.get(BACKEND_ENV) and flag_value(tokens, "ddp_backend") is None:
        tokens += ["--ddp_backend", os.environ[BACKEND_ENV]]
    apply_torch_shims()
    return tokens, note


def parse_job_args(job: str, argv: list, dataclass_types: tuple) -> ParsedArgs:
    """Parse a job's argv into instances of ``dataclass_types``; ``--help`` prints them all and exits."""
    spec = find_job(load_catalogue(), job)
    parser = HfArgumentParser(dataclass_types)
    if any(token in ("-h", "--help") for token in argv):
        parser.prog = f"python -m ftimg_jobs {job}"
        parser.print_help()
        sys.exit(0)
    training = is_training(dataclass_types)
    defaults = {"output_dir": f"output/{job}", **COMMON_TRAINING_DEFAULTS} if training else {}
    tokens = assemble_argv({**defaults, **spec.defaults}, list(argv), dataclass_flag_names(dataclass_types),
                           DEEPSPEED_DIR)
    notes = {}
    if training:
        tokens, notes["precision"] = training_tokens(tokens)
    *instances, remaining = parser.parse_args_into_dataclasses(args=tokens, return_remaining_strings=True)
    if remaining:
        raise JobError(f"unexpected argument(s): {' '.join(remaining)}. Flags take the form --name value; "
                       "a YAML config file may only come first")
    fill_model_path(instances)
    # Before anything can save or log an argument: a token lives in the environment, not in training_args.bin.
    for note in clear_secret_fields(instances, argv, os.environ):
        if os.environ.get("RANK", "0") == "0":
            say(note)
    for instance in instances if training else ():
        if isinstance(instance, training_arguments_class()) and instance.gradient_checkpointing \
                and not instance.gradient_checkpointing_kwargs:
            # Non-reentrant checkpointing works with frozen inputs (LoRA) without extra hooks.
            instance.gradient_checkpointing_kwargs = {"use_reentrant": False}
    return ParsedArgs(tuple(instances), notes)
