"""The start every training job shares: parse its flags, check them all at once, find what to resume from."""

import time
from dataclasses import dataclass

from ftimg_jobs.args.checks import Machine, adaptation_problems, data_problems, model_problems, raise_problems
from ftimg_jobs.args.parser import ParsedArgs, parse_job_args
from ftimg_jobs.logs import setup_logging
from ftimg_jobs.train.resume import resolve_resume


@dataclass
class TrainingStart:
    parsed: ParsedArgs
    log: object
    resumed_from: object  # a checkpoint path, or None for a fresh start
    started: float


def start_training(job: str, argv: list, argument_classes: tuple) -> TrainingStart:
    """``argument_classes`` are (ModelArguments, LoraArguments, data arguments, SpeedArguments, TrainingArguments)."""
    started = time.time()
    log = setup_logging()
    parsed = parse_job_args(job, argv, argument_classes)
    model_args, lora_args, data_args, _speed_args, training_args = parsed.instances
    if parsed.notes["precision"]:
        log.warning(parsed.notes["precision"])
    raise_problems(job, model_problems(model_args) + adaptation_problems(job, lora_args, training_args, Machine.here())
                   + data_problems(data_args))
    resumed_from = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
    return TrainingStart(parsed, log, resumed_from, started)
