"""Numbers the training benchmark reports (torch-free, unit-tested): per-run rate, median and spread over
repeats, ratios, loss parity, MFU."""

from statistics import median
from typing import Dict, List, Optional

# Dense bf16 tensor-core peak (TFLOP/s, no sparsity) by a piece of torch.cuda.get_device_name().
# H100 PCIe and NVL are slower parts: not listed, so they report "unknown" rather than a wrong figure.
DENSE_BF16_TFLOPS = {"H200": 989.0, "H100 80GB HBM3": 989.0, "H100 SXM": 989.0}

PARITY_TOLERANCE = 0.02
PARITY_WINDOW = 10


def run_rate(steps: List[dict], warmup: int, measured: int) -> Optional[dict]:
    """Real tokens over seconds of steps [warmup, warmup + measured): one rate for the run.

    Real tokens (no padding) over the time of all measured steps, not a median of per-step rates:
    with variable-length batches a median would favour the large steps.
    """
    window = steps[warmup:warmup + measured]
    if len(window) < measured or not window:
        return None
    seconds = sum(step["seconds"] for step in window)
    tokens = sum(step["tokens"] for step in window)
    return {"tokens_per_second": tokens / seconds, "steps_measured": len(window),
            "median_step_seconds": median(step["seconds"] for step in window),
            "real_tokens_per_step": tokens / len(window)}


def successful(runs_by_repeat: Dict[str, dict]) -> Dict[int, dict]:
    return {int(repeat): run for repeat, run in runs_by_repeat.items() if run.get("tokens_per_second")}


def spread(values: List[float]) -> Optional[dict]:
    if not values:
        return None
    return {"median": median(values), "min": min(values), "max": max(values), "n": len(values)}


def case_summary(runs_by_repeat: Dict[str, dict]) -> Optional[dict]:
    """Median and min-max of tokens/s over repeats; the highest peak memory of any repeat."""
    runs = successful(runs_by_repeat)
    rates = spread([run["tokens_per_second"] for run in runs.values()])
    if rates is None:
        return None
    peaks = [run["peak_allocated_gib"] for run in runs.values() if run.get("peak_allocated_gib") is not None]
    return {"rate": rates, "peak_gib": max(peaks) if peaks else None}


def pair_ratios(baseline_runs: Dict[str, dict], ftimg_runs: Dict[str, dict]) -> dict:
    """Ratio of the medians, and each repeat's ftimg rate over the same repeat's baseline rate."""
    baseline, ftimg = successful(baseline_runs), successful(ftimg_runs)
    per_repeat = {repeat: ftimg[repeat]["tokens_per_second"] / baseline[repeat]["tokens_per_second"]
                  for repeat in sorted(set(baseline) & set(ftimg))}
    result = {"per_repeat": per_repeat}
    if baseline and ftimg:
        result["of_medians"] = (median(r["tokens_per_second"] for r in ftimg.values())
                                / median(r["tokens_per_second"] for r in baseline.values()))
    return result


def trailing_mean(values: List[float], window: int) -> List[float]:
    """Mean of the last ``window`` values at each position (fewer at the start)."""
    return [sum(values[max(0, i + 1 - window):i + 1]) / (i + 1 - max(0, i + 1 - window)) for i in range(len(values))]


def loss_parity(baseline_losses: List[float], ftimg_losses: List[float], steps: int,
                window: int = PARITY_WINDOW, tolerance: float = PARITY_TOLERANCE) -> Optional[dict]:
    """Largest relative difference |ftimg - baseline| / baseline over the first ``steps`` steps, raw and between
    the trailing ``window``-step means of each curve (from the first full window on; one step's loss is one
    batch's, and noisy); the verdict uses the smoothed curves."""
    if len(baseline_losses) < steps or len(ftimg_losses) < steps:
        return None
    base, fast = baseline_losses[:steps], ftimg_losses[:steps]
    raw = max(abs(f - b) / abs(b) for b, f in zip(base, fast))
    full = min(window, steps) - 1
    smooth_base, smooth_fast = trailing_mean(base, window)[full:], trailing_mean(fast, window)[full:]
    smoothed = max(abs(f - b) / abs(b) for b, f in zip(smooth_base, smooth_fast))
    fell = 1 - smooth_base[-1] / smooth_base[0]
    return {"steps": steps, "window": window, "max_relative_difference_raw": raw,
            "max_relative_difference_smoothed": smoothed, "tolerance": tolerance, "within": smoothed <= tolerance,
            "baseline_smoothed_first_last": [smooth_base[0], smooth_base[-1]],
            "ftimg_smoothed_first_last": [smooth_fast[0], smooth_fast[-1]],
            # A curve that hardly falls cannot tell a run that learns from one that does not.
            "baseline_fell": fell, "meaningful": fell > 2 * tolerance}


def dense_bf16_peak_tflops(gpu_name: Optional[str]) -> Optional[float]:
    """None for a GPU not in the table (the report says "unknown")."""
    return next((tflops for key, tflops in DENSE_BF16_TFLOPS.items() if gpu_name and key in gpu_name), None)


def full_finetuning_mfu(tokens_per_second: float, parameters: int, gpu_name: Optional[str]) -> Optional[float]:
    """Model FLOP utilisation: 6·N FLOP a token (forward 2N, backward 4N) over the dense bf16 peak.

    Recomputed (checkpointed) layers add up to 2·N a token that this does not count, and attention's own
    FLOP are left out: MFU, not hardware utilisation.
    """
    peak = dense_bf16_peak_tflops(gpu_name)
    if peak is None or not parameters:
        return None
    return 6 * parameters * tokens_per_second / (peak * 1e12)
