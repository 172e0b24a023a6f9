"""What every training job does after ``trainer.train()``: save, plot, write run.json, pick the exit code."""

import logging
import os
import time
from pathlib import Path

from ftimg_jobs.host_paths import PATH_MAP_ENV, host_paths
from ftimg_jobs.model.device import device_info, peak_gpu_memory_bytes
from ftimg_jobs.run_manifest import build_manifest, flat_args, write_manifest
from ftimg_jobs.train.fingerprint_callback import FingerprintCheckpoints
from ftimg_jobs.train.loss_plot import save_loss_curve
from ftimg_jobs.train.regional_compile import compile_outcome

log = logging.getLogger("ftimg_jobs")


def train_metrics(train_output, log_history) -> dict:
    """Train-time numbers: mean loss over the run, last logged loss, throughput."""
    metrics = {key: value for key, value in (train_output.metrics if train_output else {}).items()}
    logged = [entry["loss"] for entry in log_history if "loss" in entry]
    if logged:
        metrics["first_logged_loss"] = logged[0]
        metrics["final_logged_loss"] = logged[-1]
    return metrics


def output_record(trainer) -> dict:
    """What the fingerprint callback knows about this output: fingerprint, lock, resume plan."""
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, FingerprintCheckpoints):
            return callback.record
    return {}


def learning_summary(metrics: dict, steps: int, curve: Path) -> str:
    """The run's last line: how far the loss fell, and where the curve is (as the user named the directory)."""
    where = host_paths(str(curve), os.environ.get(PATH_MAP_ENV, ""))
    if "first_logged_loss" not in metrics:
        return f"no loss was logged (fewer steps than --logging_steps); loss curve: {where}"
    return (f"loss {metrics['first_logged_loss']:.3f} -> {metrics['final_logged_loss']:.3f} over {steps} steps; "
            f"loss curve: {where}")


def finish_run(trainer, *, job: str, parsed: tuple, stop, train_output, started: float, data_files: dict,
               attention: dict, eval_metrics: dict, resumed_from, extra: dict) -> int:
    """Save the final model (unless stopped early), loss curve and run.json; return the exit code."""
    args = trainer.args
    completed = not stop.stopped_early
    if completed:
        trainer.save_model(args.output_dir)
    trainer.save_state()
    exit_code = stop.exit_code
    compiled = extra.get("speed", {}).get("compile", {})
    if compiled.get("applied"):
        compiled.update(compile_outcome())  # known only once the steps have run
    if trainer.is_world_process_zero():
        output_dir = Path(args.output_dir)
        save_loss_curve(trainer.state.log_history, output_dir / "loss_curve.png", title=job)
        manifest = build_manifest(
            job=job, args=flat_args(parsed), env=dict(os.environ),
            status="completed" if completed else "interrupted", exit_code=exit_code,
            metrics={**train_metrics(train_output, trainer.state.log_history), **eval_metrics},
            data_files=data_files, attention=attention, device=device_info(), world_size=args.world_size,
            wall_time_s=time.time() - started, peak_gpu_memory_bytes=peak_gpu_memory_bytes(),
            global_step=trainer.state.global_step, resumed_from=resumed_from,
            extra={**extra, **output_record(trainer)})
        path = write_manifest(output_dir, manifest)
        log.info("%s %s at step %d; wrote %s", job, manifest["status"], trainer.state.global_step,
                 host_paths(str(path), os.environ.get(PATH_MAP_ENV, "")))
        log.info(learning_summary(manifest["metrics"], trainer.state.global_step, output_dir / "loss_curve.png"))
    return exit_code
