"""The start every training job shares: parse its flags, check them all at once, find what to resume from."""

import os
import shutil
import time
from dataclasses import dataclass

from ftimg_jobs.args.checks import Machine, adaptation_problems, data_problems, model_problems, raise_problems
from ftimg_jobs.args.parser import ParsedArgs, parse_job_args
from ftimg_jobs.logs import setup_logging
from ftimg_jobs.run_lock import acquire, is_global_rank_zero, lock_path_for_directory
from ftimg_jobs.train.data_digest import training_data_sha256
from ftimg_jobs.train.fingerprint import build_fingerprint, fingerprint_document, resumable_settings
from ftimg_jobs.train.fingerprint_callback import FingerprintCheckpoints
from ftimg_jobs.model.flash4_kernel_cache import enable_flash4_kernel_cache
from ftimg_jobs.train.resume import plan_resume


@dataclass
class TrainingStart:
    parsed: ParsedArgs
    log: object
    resumed_from: object  # a checkpoint path, or None for a fresh start
    started: float
    fingerprints: FingerprintCheckpoints  # a Trainer callback; also what run.json records about the output
    kernel_cache: str  # where FlashAttention-4 keeps its compiled kernels (model/flash4_kernel_cache.py)


def start_training(job: str, argv: list, argument_classes: tuple) -> TrainingStart:
    """``argument_classes`` are (ModelArguments, LoraArguments, data arguments, SpeedArguments, TrainingArguments)."""
    started = time.time()
    kernel_cache = enable_flash4_kernel_cache()  # before the attention probe imports flash-attn-4
    log = setup_logging()
    parsed = parse_job_args(job, argv, argument_classes)
    model_args, lora_args, data_args, _speed_args, training_args = parsed.instances
    if parsed.notes["precision"]:
        log.warning(parsed.notes["precision"])
    raise_problems(job, model_problems(model_args) + adaptation_problems(job, lora_args, training_args, Machine.here())
                   + data_problems(data_args))
    if training_args.label_names is None:
        # Both jobs feed the Trainer a "labels" column; naming it keeps eval loss with a PEFT wrapper.
        training_args.label_names = ["labels"]
    fingerprints = claim_output(job, parsed.instances, log)
    return TrainingStart(parsed, log, fingerprints.record["resume"]["checkpoint"], started, fingerprints,
                         kernel_cache)


def claim_output(job: str, instances: tuple, log) -> FingerprintCheckpoints:
    """Hold the output directory (global rank 0), then choose the checkpoint: only one of this same run.

    Raises JobError before anything is loaded or written when the directory is another live job's or
    its checkpoints belong to a different run.
    """
    model_args, lora_args, data_args, _speed_args, training_args = instances
    env = dict(os.environ)
    lock = None
    if is_global_rank_zero(env):
        lock = acquire(lock_path_for_directory(training_args.output_dir), job, "give this run another --output_dir")
        if lock.took_over:
            log.warning("took over the stale lock of %s: its process is gone", lock.took_over.get("run", "?"))
    fingerprint = build_fingerprint(job, model_args, lora_args, data_args, training_data_sha256(data_args),
                                    training_args)
    settings = resumable_settings(training_args, int(env.get("WORLD_SIZE", "1")))
    plan = plan_resume(training_args.resume_from_checkpoint, training_args.output_dir, fingerprint, settings,
                       training_args.overwrite_output_dir)
    for note in plan.notes:
        log.info(note)
    if lock is not None:
        for checkpoint in plan.remove:
            shutil.rmtree(checkpoint)
    record = {"fingerprint": fingerprint, "lock": lock.manifest_entry() if lock else None,
              "resume": {"checkpoint": plan.checkpoint, "changed_settings": plan.changed_settings,
                         "notes": plan.notes}}
    return FingerprintCheckpoints(fingerprint_document(fingerprint, settings), record)
