"""Training speed of the ftimg jobs against the plain scripts the seeds use (issue 15), one process per run.

    PYTHONPATH=entrypoints:benchmarks python benchmarks/speed_benchmark.py --out bench      # one NVIDIA GPU
    PYTHONPATH=entrypoints:benchmarks python benchmarks/speed_benchmark.py --out bench-smoke --tiny \\
        --steps 4 --warmup 1 --repeats 2                                                      # CPU smoke run

Makes a Llama-2-7B-shaped model with random weights once under --work (hidden 4096,
32 layers, 32 heads, MLP 11008, vocab 32000), then runs pairs of cases, most
important first: LoRA, QLoRA, cls, full fine-tuning, variable length, QLoRA
memory-saving (speed_plan.py). Within a pair the baseline (speed_baselines.py)
and the ftimg job path (speed_ftimg.py) alternate, --repeats times, each run in
its own process, each measuring --steps steps after --warmup. The LoRA pair's
first repeat trains --parity-steps steps on both sides to compare loss curves.

Runs are kept in OUT/results.json as they finish; calling again with the same
--out skips what is measured, so a call stopped by --deadline-s (or killed) is
continued by the next. Where one command may run only so long, repeat

    PYTHONPATH=entrypoints:benchmarks python benchmarks/speed_benchmark.py --out bench --deadline-s 530

until it prints "runs left: 0". The report (performance-table.md, performance.png)
is written at the end of every call (speed_report.py). A ratio only compares runs of one
call: a pair whose repeats a deadline split over two calls shows none, so give a call time
for whole pairs (a pair of 3 repeats takes about 5 minutes on an H200).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from speed_plan import SHAPES_7B, SHAPES_TINY, estimate_runs, pairs, run_order, select_pairs  # noqa: E402
from speed_report import write_report  # noqa: E402
from speed_results import ResultsMismatch, is_measured, load_results, record_run, save_results  # noqa: E402

DEFAULT_WORK = "/tmp/ftimg-speed-bench"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for results.json, table.md, performance.png; "
                        "an existing results.json there is continued")
    parser.add_argument("--work", default=DEFAULT_WORK, help="the model (made once, reused) and the runs' "
                        f"output directories (default {DEFAULT_WORK})")
    parser.add_argument("--tiny", action="store_true", help="2-layer model, short sequences: a quick check")
    parser.add_argument("--steps", type=int, default=20, help="measured steps per run, after the warm-up")
    parser.add_argument("--warmup", type=int, default=3, help="steps before the measured ones")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each case, alternating within a pair")
    parser.add_argument("--parity-steps", type=int, default=50, help="steps of the LoRA pair's loss-parity run "
                        "(its first repeat runs this long; 0: no loss comparison)")
    parser.add_argument("--profile-steps", type=int, default=0, help="after the measured steps, trace this many "
                        "more on the GPU and record kernel time against wall time (speed_profile.py)")
    parser.add_argument("--only", default="", help="comma-separated pairs (lora, qlora, cls, full, varlen, "
                        "qlora-lean, full-8bit, lora-eager, ...) or case names; default: all")
    parser.add_argument("--deadline-s", type=float, default=0, help="start no run that would end after this "
                        "many seconds from the start (0: no deadline); a run still going then is stopped")
    parser.add_argument("--run-timeout-s", type=float, default=600, help="stop a single run after this long")
    args = parser.parse_args()
    problems = [f"--{name.replace('_', '-')} {getattr(args, name)}: must be at least {least}"
                for name, least in (("steps", 1), ("warmup", 0), ("repeats", 1), ("parity_steps", 0),
                                              ("profile_steps", 0))
                if getattr(args, name) < least]
    if problems:
        parser.error("; ".join(problems))
    return args


def probe_environment() -> dict:
    completed = subprocess.run([sys.executable, str(HERE / "speed_environment.py")], capture_output=True,
                               text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def ensure_model(work: Path, tiny: bool) -> Path:
    """The random model under ``work``, made on the first call only (made aside, then renamed into place)."""
    model_dir = work / ("tiny-llama" if tiny else "llama2-7b-random")
    if (model_dir / "config.json").exists():
        print(f"model: reusing {model_dir}", flush=True)
        return model_dir
    partial = work / (model_dir.name + ".partial")
    started = time.time()
    subprocess.run([sys.executable, str(HERE / "speed_model.py"), str(partial), *(["--tiny"] if tiny else [])],
                   check=True)
    partial.rename(model_dir)
    print(f"model: made {model_dir} in {time.time() - started:.0f} s", flush=True)
    return model_dir


def run_one(run_spec: dict, timeout_s: float) -> dict:
    """One run in its own process; its RESULT line, or what went wrong with the tail of its log."""
    started = time.time()
    try:
        completed = subprocess.run([sys.executable, str(HERE / "speed_cases.py"), json.dumps(run_spec)],
                                   capture_output=True, text=True, timeout=timeout_s,
                                   env={**os.environ, **run_spec.get("env", {})})
    except subprocess.TimeoutExpired as expired:
        tail = (expired.stderr or b"")[-2500:]
        return {"error": f"stopped after {timeout_s:.0f} s", "log_tail": tail.decode(errors="replace")
                if isinstance(tail, bytes) else tail, "wall_s": time.time() - started}
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not lines:
        return {"error": f"exit {completed.returncode}", "log_tail": (completed.stderr or completed.stdout)[-2500:],
                "wall_s": time.time() - started}
    return {**json.loads(lines[-1][len("RESULT "):]), "wall_s": time.time() - started}


def print_estimates(pending: list, results: dict, elapsed: float, deadline_s: float) -> None:
    estimates = estimate_runs(pending, results["runs"], results["cases"])
    if not estimates:
        return
    by_case = {}
    for run in pending:
        estimate = estimates.get(run.key)
        if estimate:
            seconds, count, source = by_case.get(run.case["name"], (0.0, 0, estimate.source))
            by_case[run.case["name"]] = (seconds + estimate.seconds, count + 1, source)
    total = sum(seconds for seconds, _, _ in by_case.values())
    print(f"estimate of the runs left ({len(pending)}), in order:", flush=True)
    for name, (seconds, count, source) in by_case.items():
        print(f"  {name:24s} {count} run(s) x {seconds / count:5.0f} s = {seconds:5.0f} s  ({source})")
    ends = elapsed + total
    note = f"; the deadline is {deadline_s:.0f} s" if deadline_s else ""
    print(f"  all: {total:.0f} s, ending near {ends:.0f} s after the start{note}", flush=True)


def report_run(name: str, repeat: int, result: dict) -> None:
    if "error" in result:
        print(f"{name} r{repeat}: {result['error']} after {result['wall_s']:.0f} s\n{result.get('log_tail', '')}",
              flush=True)
        return
    peak = result.get("peak_allocated_gib")
    print(f"{name} r{repeat}: {result['tokens_per_second']:,.0f} tok/s, median step {result['median_step_seconds']:.3f}"
          f" s, set-up {result['setup_seconds']:.0f} s, wall {result['wall_s']:.0f} s"
          + (f", peak {peak:.1f} GiB" if peak else ""), flush=True)
    profile = result.get("profile")
    if profile:
        print(f"  traced {profile['steps']} steps: GPU busy {profile['gpu_busy_seconds_per_step']:.3f} of "
              f"{profile['wall_seconds_per_step']:.3f} s a step ({profile['gpu_busy_share']:.0%}), "
              f"{profile['kernels_per_step']:,.0f} kernels a step", flush=True)


def run_pending(pending: list, results: dict, args, started: float, gpu, model_dir: Path, results_path: Path):
    """Run what is not measured yet, in order, saving after each run; stop before the deadline."""
    failed, estimated_once = set(), False
    for index, run in enumerate(pending):
        name, repeat = run.key
        if name in failed:
            print(f"{name} r{repeat}: not started, an earlier repeat failed in this call", flush=True)
            continue
        if run.case["method"] == "qlora" and gpu is None:
            record_run(results, run.case, repeat, {"skipped": "QLoRA needs a CUDA GPU (bitsandbytes 4-bit)"})
            print(f"{name} r{repeat}: skipped, QLoRA needs a CUDA GPU", flush=True)
            continue
        elapsed = time.time() - started
        estimate = estimate_runs([run], results["runs"], results["cases"]).get(run.key)
        if estimate and not estimated_once:
            print_estimates(pending[index:], results, elapsed, args.deadline_s)
            estimated_once = True
        if args.deadline_s and estimate and elapsed + estimate.seconds > args.deadline_s:
            left = [f"{r.case['name']} r{r.repeat}" for r in pending[index:] if r.case["name"] not in failed]
            print(f"deadline: {elapsed:.0f} s gone, {name} r{repeat} would take ~{estimate.seconds:.0f} s; "
                  f"not started: {', '.join(left)}. Call again with the same --out to continue.", flush=True)
            return
        until_deadline = args.deadline_s - elapsed if args.deadline_s else float("inf")
        spec = {**run.case, "total_steps": run.total_steps, "warmup": args.warmup, "steps": args.steps,
                "profile_steps": args.profile_steps,
                "model_dir": str(model_dir), "run_dir": str(Path(args.work) / "runs" / f"{name}-r{repeat}")}
        result = run_one(spec, max(min(args.run_timeout_s, until_deadline), 1))
        record_run(results, run.case, repeat, {**result, "call": len(results["calls"]) - 1})
        save_results(results_path, results)
        report_run(name, repeat, result)
        if "error" in result and until_deadline <= args.run_timeout_s and result["wall_s"] >= until_deadline:
            print("deadline reached while a run was going; call again with the same --out to continue", flush=True)
            return
        if "error" in result:
            failed.add(name)


def main() -> int:
    args = parse_args()
    started = time.time()
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    shapes = SHAPES_TINY if args.tiny else SHAPES_7B
    all_pairs = pairs(shapes)
    try:
        chosen = select_pairs(all_pairs, args.only)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    environment = probe_environment()
    print(json.dumps(environment), flush=True)
    settings = {"tiny": args.tiny, "steps": args.steps, "warmup": args.warmup, "parity_steps": args.parity_steps,
                "shapes": asdict(shapes), "repeats": args.repeats,
                "model": "tiny Llama" if args.tiny else "Llama-2-7B shape, random bf16 weights",
                "lora": "r=8, alpha=16 on q/k/v/o/gate/up/down; dropout 0.05 (baseline), the job's default (ftimg)",
                "data": "token t is a fixed permutation of token t-2 over a 64-letter alphabet (speed_model.chain)"}
    results_path = out / "results.json"
    try:
        results = load_results(results_path, settings, environment)
    except ResultsMismatch as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results["calls"].append({"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "environment": environment})
    results["pairs"] = [asdict(pair) for pair in all_pairs]
    model_dir = ensure_model(work, args.tiny)
    order = run_order(chosen, args.repeats, args.warmup + args.steps + args.profile_steps, args.parity_steps)
    pending = [run for run in order if not is_measured(results, *run.key)]
    print(f"{len(order) - len(pending)} of {len(order)} runs already measured in {results_path}", flush=True)
    run_pending(pending, results, args, started, environment["gpu"], model_dir, results_path)
    save_results(results_path, results)
    left = [f"{run.case['name']} r{run.repeat}" for run in order if not is_measured(results, *run.key)
            and "skipped" not in (results["runs"].get(run.case["name"], {}).get(str(run.repeat)) or {})]
    print(f"this call: {time.time() - started:.0f} s; runs left: {len(left)}"
          + (f" ({', '.join(left)})" if left else ""), flush=True)
    print(write_report(results, out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
