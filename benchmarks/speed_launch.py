"""A benchmark run's own process (clean peak-memory numbers, no state shared between runs).

Forked from the benchmark once it has imported torch and transformers, so that a run does not pay
those imports again (several seconds a run on a GPU host's slow CPU, over dozens of runs a call);
a fresh interpreter instead where a run sets environment variables that torch reads at import (its
compile switches), or where CUDA is already initialised in the benchmark (a fork could not use it).
Either way the run's RESULT, or its error and the tail of its log, comes back as one dict.
"""

import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
from pathlib import Path

RESULT_PREFIX = "RESULT "
LOG_TAIL_CHARS = 2500

# torch.cuda.is_available() then asks NVML and leaves the CUDA driver uninitialised here, as a fork needs.
os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")


def log_tail(text) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return (text or "")[-LOG_TAIL_CHARS:]


def can_fork(run_spec: dict) -> bool:
    if run_spec.get("env"):
        return False
    try:
        import torch
    except ImportError:  # the run's own interpreter will say so
        return False
    return not torch.cuda.is_initialized()


def run_in_interpreter(script: Path, run_spec: dict, timeout_s: float) -> dict:
    """``python script RUN_JSON`` with the run's env on top of this one's; its last RESULT line."""
    try:
        completed = subprocess.run([sys.executable, str(script), json.dumps(run_spec)], capture_output=True,
                                   text=True, timeout=timeout_s, env={**os.environ, **run_spec.get("env", {})})
    except subprocess.TimeoutExpired as expired:
        return {"error": f"stopped after {timeout_s:.0f} s", "log_tail": log_tail(expired.stderr)}
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if completed.returncode != 0 or not lines:
        return {"error": f"exit {completed.returncode}", "log_tail": log_tail(completed.stderr or completed.stdout)}
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def run_forked(target, run_spec: dict, timeout_s: float) -> dict:
    """``target(run_spec)`` in a forked child, its output into a log; the dict it returns."""
    with tempfile.TemporaryDirectory(prefix="speed-run-") as scratch:
        log_path, result_path = Path(scratch) / "log", Path(scratch) / "result.json"
        child = multiprocessing.get_context("fork").Process(
            target=child_main, args=(target, run_spec, str(log_path), str(result_path)))
        child.start()
        child.join(timeout_s)
        if child.is_alive():
            child.kill()
            child.join()
            return {"error": f"stopped after {timeout_s:.0f} s", "log_tail": read_tail(log_path)}
        if child.exitcode != 0 or not result_path.exists():
            return {"error": f"exit {child.exitcode}", "log_tail": read_tail(log_path)}
        return json.loads(result_path.read_text())


def read_tail(path: Path) -> str:
    return log_tail(path.read_text(errors="replace")) if path.exists() else ""


def child_main(target, run_spec: dict, log_path: str, result_path: str) -> None:
    """In the child: stdout and stderr (the C libraries' too) into the log, the result into its file."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log, 1)
    os.dup2(log, 2)
    # Python's own streams too, whatever the parent had put there (a traceback goes to sys.stderr).
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    result = target(run_spec)
    Path(result_path).write_text(json.dumps(result, default=str))
