"""What every training job does after ``trainer.train()``: save, plot, write run.json, pick the exit code."""

import dataclasses
import logging
import os
import time
from pathlib import Path

import torch

from ftimg_jobs.loss_plot import save_loss_curve
from ftimg_jobs.run_manifest import build_manifest, write_manifest

log = logging.getLogger("ftimg_jobs")


def device_info() -> dict:
    if torch.cuda.is_available():
        return {"type": "cuda", "gpu_name": torch.cuda.get_device_name(), "gpu_count": torch.cuda.device_count()}
    return {"type": "cpu", "gpu_name": None, "gpu_count": 0}


def peak_gpu_memory_bytes():
    return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None


def all_args(parsed: tuple) -> dict:
    """Every parsed flag, our dataclasses and TrainingArguments alike."""
    merged = {}
    for instance in parsed:
        merged.update(instance.to_dict() if hasattr(instance, "to_dict") else dataclasses.asdict(instance))
    return merged


def train_metrics(train_output, log_history) -> dict:
    """Train-time numbers: mean loss over the run, last logged loss, throughput."""
    metrics = {key: value for key, value in (train_output.metrics if train_output else {}).items()}
    logged = [entry["loss"] for entry in log_history if "loss" in entry]
    if logged:
        metrics["first_logged_loss"] = logged[0]
        metrics["final_logged_loss"] = logged[-1]
    return metrics


def finish_run(trainer, *, job: str, parsed: tuple, stop, train_output, started: float, data_files: dict,
               attention: dict, eval_metrics: dict, resumed_from, extra: dict) -> int:
    """Save the final model (unless stopped early), loss curve and run.json; return the exit code."""
    args = trainer.args
    completed = not stop.stopped_early
    if completed:
        trainer.save_model(args.output_dir)
    trainer.save_state()
    exit_code = stop.exit_code
    if trainer.is_world_process_zero():
        output_dir = Path(args.output_dir)
        save_loss_curve(trainer.state.log_history, output_dir / "loss_curve.png", title=job)
        manifest = build_manifest(
            job=job, args=all_args(parsed), env=dict(os.environ),
            status="completed" if completed else "interrupted", exit_code=exit_code,
            metrics={**train_metrics(train_output, trainer.state.log_history), **eval_metrics},
            data_files=data_files, attention=attention, device=device_info(), world_size=args.world_size,
            wall_time_s=time.time() - started, peak_gpu_memory_bytes=peak_gpu_memory_bytes(),
            global_step=trainer.state.global_step, resumed_from=resumed_from, extra=extra)
        path = write_manifest(output_dir, manifest)
        log.info("%s %s at step %d; wrote %s", job, manifest["status"], trainer.state.global_step, path)
    return exit_code
