"""The infer job at the GPU's speed: `ftimg_jobs infer` (its defaults) against eager model.generate, in one run.

    PYTHONPATH=entrypoints:benchmarks python benchmarks/infer_benchmark.py --out infer-bench    # one NVIDIA GPU

Case (issue 12): 1,024 prompts of 16-512 tokens (uniform, seeded), 128 new tokens each,
greedy, EOS ignored so every record generates 128; a Llama-2-7B-shaped model with random
bf16 weights (speed_model.py). Each side runs in its own process, timed from its start:
- baseline (infer_baseline.py): model.generate, eager, dynamic cache, batch 64, sorted, left-padded;
- ftimg: `python -m ftimg_jobs infer --ignore_eos True` with every other flag at its default.
The two sides run alternately, --repeats times (default 3: baseline, ftimg, baseline, ...);
the table gives each side's median and spread and the ratio of the medians (the host's speed
moves eager decoding between runs, so a ratio is only taken within one run). Before the
repeats: greedy agreement of the two on a small model trained to copy (infer_workload.py says
why a random model cannot measure it), and the job's default batch at 4,096-token prompts.

A call may end before the repeats do (a time limit): results.json under --out keeps what was
measured, and the same command again continues from there (--deadline-s stops starting a run
that would not finish in time). Writes results.json, infer-table.md and infer.png; prints the table last.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENTRYPOINTS = HERE.parent / "entrypoints"
sys.path.insert(0, str(HERE))

from infer_workload import NEW_TOKENS, chain_prompts, random_prompts, write_jsonl  # noqa: E402

RESULTS: dict = {"cases": {}}


def save(out: Path) -> None:
    (out / "results.json").write_text(json.dumps(RESULTS, indent=1))


def run(command: list, timeout: float) -> dict:
    """Run a command in its own process; its wall time, exit code and output tail."""
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               PYTHONPATH=f"{ENTRYPOINTS}{os.pathsep}{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    started = time.time()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "wall_seconds": round(time.time() - started, 2)}
    result = {"wall_seconds": round(time.time() - started, 2), "exit_code": done.returncode}
    if done.returncode != 0:
        result["log_tail"] = (done.stderr or done.stdout)[-3000:]
    result["stdout"] = done.stdout
    return result


def baseline(model: Path, prompts: Path, output: Path, timeout: float) -> dict:
    result = run([sys.executable, str(HERE / "infer_baseline.py"), "--model", str(model), "--prompts", str(prompts),
                  "--output", str(output), "--max-new-tokens", str(NEW_TOKENS), "--batch-size", "64"], timeout)
    lines = [line for line in result.pop("stdout", "").splitlines() if line.startswith("RESULT ")]
    return {**result, **(json.loads(lines[-1][len("RESULT "):]) if lines else {})}


def ftimg(model: Path, prompts: Path, output: Path, timeout: float, *flags) -> dict:
    # A fresh output each time: the job would resume a run an earlier, stopped call left behind.
    shutil.rmtree(output.parent, ignore_errors=True)
    result = run([sys.executable, "-m", "ftimg_jobs", "infer", "--model_name_or_path", str(model),
                  "--input_path", str(prompts), "--output_path", str(output), "--max_new_tokens", str(NEW_TOKENS),
                  "--ignore_eos", "True", *flags], timeout)
    result.pop("stdout", None)
    ended = time.time()
    manifest_path = output.parent / "run.json"
    if result.get("exit_code") != 0 or not manifest_path.exists():
        return result
    manifest = json.loads(manifest_path.read_text())
    metrics = manifest["metrics"]
    # The wall time outside the job's own clock: interpreter start and imports before it, and
    # the process's exit (freeing the GPU) after run.json, the job's last write.
    exit_seconds = ended - manifest_path.stat().st_mtime
    return {**result, "generated_tokens": metrics["generated_tokens"], "generate_seconds": metrics["generate_seconds"],
            "tokens_per_second": metrics["tokens_per_second"], "warmup_seconds": metrics["warmup_seconds"],
            "job_wall_seconds": manifest["wall_time_s"], "exit_seconds": round(exit_seconds, 2),
            "start_seconds": round(result["wall_seconds"] - manifest["wall_time_s"] - exit_seconds, 2),
            "peak_gpu_memory_gib": round(manifest["peak_gpu_memory_bytes"] / 2 ** 30, 2),
            "engine": manifest["engine"]}


def texts(path: Path) -> dict:
    return {record["id"]: record["generated_text"] for record in map(json.loads, path.read_text().splitlines())}


def agreement(first: Path, second: Path) -> dict:
    a, b = texts(first), texts(second)
    same = sum(a[key] == b.get(key) for key in a)
    words = sum(sum(x == y for x, y in zip(a[key].split(), b.get(key, "").split())) for key in a)
    return {"records_identical": same, "records": len(a), "share": round(same / len(a), 4),
            "tokens_identical_share": round(words / max(1, sum(len(text.split()) for text in a.values())), 4)}


def make_models(work: Path) -> None:
    big, small = work / "llama2-7b-random", work / "copy-model"
    code = ("from speed_model import make_model; from infer_workload import train_copy_model, top2_margin, "
            "chain_prompts, random_prompts; import json, torch; from pathlib import Path; "
            "from transformers import AutoModelForCausalLM as M; out = {}; "
            f"big, small = Path({str(big)!r}), Path({str(small)!r}); "
            "make_model(str(big), False) if not (big / 'config.json').exists() else None; "
            "out['copy_training'] = train_copy_model(small, steps=800); "
            "m = M.from_pretrained(small, dtype=torch.bfloat16, device_map='cuda'); "
            "out['margin_copy_model'] = round(top2_margin(m, chain_prompts(64)), 3); del m; "
            "m = M.from_pretrained(big, dtype=torch.bfloat16, device_map='cuda'); "
            "out['margin_random_7b'] = round(top2_margin(m, random_prompts(64)), 3); "
            "print('RESULT ' + json.dumps(out))")
    result = run([sys.executable, "-c", code], 600)
    lines = [line for line in result.pop("stdout", "").splitlines() if line.startswith("RESULT ")]
    RESULTS["models"] = {**result, **(json.loads(lines[-1][len("RESULT "):]) if lines else {})}


def long_prompts(work: Path, count: int = 64, length: int = 4096) -> Path:
    path = work / "prompts-4096.jsonl"
    write_jsonl(path, random_prompts(count, length - 1, length - 1, seed=2))  # + BOS = 4,096 tokens
    return path


SIDES = ("baseline", "ftimg")
SUMMARISED = ("tokens_per_second", "wall_seconds", "generate_seconds", "warmup_seconds", "peak_gpu_memory_gib",
              "start_seconds", "exit_seconds")


def summarise(runs: list) -> dict:
    """Median, min and max of each figure over the runs that finished."""
    finished = [run for run in runs if "tokens_per_second" in run]
    summary = {"runs": len(finished)}
    for key in SUMMARISED:
        values = [run[key] for run in finished if isinstance(run.get(key), (int, float))]
        if values:
            summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return summary


def ratios() -> dict:
    """Ratios of the medians, and each repeat's own ratio (its baseline and ftimg ran back to back)."""
    repeats = RESULTS.get("repeats", {})
    base, fast = repeats.get("baseline", {}).get("summary", {}), repeats.get("ftimg", {}).get("summary", {})
    if "tokens_per_second" not in base or "tokens_per_second" not in fast:
        return {}
    pairs = list(zip(repeats["baseline"]["runs"], repeats["ftimg"]["runs"]))
    finished = [(b, f) for b, f in pairs if "tokens_per_second" in b and "tokens_per_second" in f]
    return {"tokens_per_second": fast["tokens_per_second"]["median"] / base["tokens_per_second"]["median"],
            "wall_seconds": base["wall_seconds"]["median"] / fast["wall_seconds"]["median"],
            "per_repeat_tokens_per_second": [round(f["tokens_per_second"] / b["tokens_per_second"], 3)
                                             for b, f in finished],
            "per_repeat_wall_seconds": [round(b["wall_seconds"] / f["wall_seconds"], 3) for b, f in finished]}


def plot(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    repeats = RESULTS.get("repeats", {})
    summaries = [repeats.get(side, {}).get("summary", {}) for side in SIDES]
    if any("tokens_per_second" not in summary for summary in summaries):
        return
    figure, (rate, wall) = plt.subplots(1, 2, figsize=(9, 3.6))
    labels = ["model.generate\n(eager, batch 64)", "ftimg infer\n(defaults)"]
    colours = ["#999999", "#2a7ab9"]
    for axis, key in ((rate, "tokens_per_second"), (wall, "wall_seconds")):
        medians = [summary[key]["median"] for summary in summaries]
        spread = [[m - summary[key]["min"] for m, summary in zip(medians, summaries)],
                  [summary[key]["max"] - m for m, summary in zip(medians, summaries)]]
        axis.bar(labels, medians, yerr=spread, capsize=6, color=colours)
    ratio = ratios()
    rate.set_ylabel("generated tokens / s")
    rate.set_title(f"{ratio['tokens_per_second']:.2f}x tokens/s (medians)")
    wall.set_ylabel("seconds, process start to exit")
    wall.set_title(f"{ratio['wall_seconds']:.2f}x faster end to end (medians)")
    figure.suptitle(f"1,024 prompts of 16-512 tokens, 128 new tokens, Llama-2-7B shape, {RESULTS.get('gpu')}; "
                    f"median of {summaries[0]['runs']} alternating runs, bars span min-max", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def table() -> str:
    repeats = RESULTS.get("repeats", {})
    base, fast = (repeats.get(side, {}).get("summary", {}) for side in SIDES)
    ratio = ratios()
    rows = [f"| median (min-max) of {base.get('runs', 0)} / {fast.get('runs', 0)} runs | baseline (model.generate, "
            "batch 64) | ftimg infer (defaults) | ratio of medians |", "|---|---:|---:|---:|"]

    def shown(summary, key, digits):
        value = summary.get(key)
        if not value:
            return "-"
        return f"{value['median']:,.{digits}f} ({value['min']:,.{digits}f}-{value['max']:,.{digits}f})"

    def row(name, key, digits=0):
        value = f"{ratio[key]:.2f}x" if key in ratio else ""
        rows.append(f"| {name} | {shown(base, key, digits)} | {shown(fast, key, digits)} | {value} |")

    row("generated tokens/s", "tokens_per_second")
    row("generate seconds", "generate_seconds", 1)
    row("wall seconds (process start to exit: load, compile/capture, generate, write)", "wall_seconds", 1)
    row("start-up before the job's clock (interpreter, imports)", "start_seconds", 1)
    row("exit after the job's last write", "exit_seconds", 1)
    row("warm-up (graph capture) seconds", "warmup_seconds", 1)
    row("peak GPU memory GiB", "peak_gpu_memory_gib", 1)
    if ratio:
        rows.append(f"| per-repeat ratios (tokens/s; wall) | | | {ratio['per_repeat_tokens_per_second']}; "
                    f"{ratio['per_repeat_wall_seconds']} |")
    return "\n".join(rows)


def load_results(out: Path) -> None:
    """Continue an earlier call's run of the same --out."""
    path = out / "results.json"
    if path.exists():
        RESULTS.update(json.loads(path.read_text()))


def run_side(side: str, big: Path, prompts: Path, work: Path, repeat: int) -> dict:
    if side == "baseline":
        return baseline(big, prompts, work / f"baseline-{repeat}.jsonl", 400)
    return ftimg(big, prompts, work / f"ftimg-{repeat}" / "out.jsonl", 300)


def repeat_runs(big: Path, prompts: Path, work: Path, out: Path, repeats: int, deadline: float) -> None:
    """baseline, ftimg, baseline, ftimg, ...: each side's runs interleaved with the other's."""
    record = RESULTS.setdefault("repeats", {side: {"runs": []} for side in SIDES})
    for repeat in range(repeats):
        for side in SIDES:
            runs = record[side]["runs"]
            if len(runs) > repeat:
                continue
            expected = max((run.get("wall_seconds", 0) for run in runs), default=0)
            if expected and time.time() + expected > deadline:
                print(f"deadline: {side} run {repeat + 1} (about {expected:.0f} s) left for the next call", flush=True)
                return
            runs.append(run_side(side, big, prompts, work, repeat))
            record[side]["summary"] = summarise(runs)
            print(side, repeat + 1, json.dumps(runs[-1])[:1500], flush=True)
            save(out)
    if "ftimg" in record and record["ftimg"]["runs"] and "baseline" in record and record["baseline"]["runs"]:
        last = repeats - 1
        if "tokens_per_second" in record["baseline"]["runs"][last] and \
                "tokens_per_second" in record["ftimg"]["runs"][last]:
            RESULTS["agreement_random_7b"] = agreement(work / f"baseline-{last}.jsonl",
                                                       work / f"ftimg-{last}" / "out.jsonl")
    RESULTS["ratios"] = ratios()
    save(out)


def agreement_part(small: Path, work: Path, out: Path) -> None:
    if "agreement_copy_model" in RESULTS:
        return
    chains = work / "chains.jsonl"
    write_jsonl(chains, chain_prompts())
    cases = RESULTS["cases"]
    cases["copy_baseline"] = baseline(small, chains, work / "copy-baseline.jsonl", 300)
    cases["copy_ftimg"] = ftimg(small, chains, work / "copy-ftimg" / "out.jsonl", 300)
    if cases["copy_ftimg"].get("exit_code") == 0 and cases["copy_baseline"].get("exit_code") == 0:
        RESULTS["agreement_copy_model"] = agreement(work / "copy-baseline.jsonl", work / "copy-ftimg" / "out.jsonl")
    print("agreement", json.dumps(RESULTS.get("agreement_copy_model")), flush=True)
    save(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for results.json, infer-table.md, infer.png")
    parser.add_argument("--work", default="/tmp/infer-bench", help="scratch directory for models and outputs")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: agreement,long")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side, alternating (default 3)")
    parser.add_argument("--deadline-s", type=float, default=0,
                        help="start no run that would end more than this many seconds after the start (0: none)")
    args = parser.parse_args()
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    skip = set(args.skip.split(","))
    started = time.time()
    deadline = started + args.deadline_s if args.deadline_s else float("inf")
    load_results(out)
    import torch

    RESULTS["gpu"] = torch.cuda.get_device_name()
    RESULTS["versions"] = {"torch": torch.__version__, "transformers": __import__("transformers").__version__}
    big, small = work / "llama2-7b-random", work / "copy-model"
    if not (big / "config.json").exists() or not (small / "config.json").exists():
        make_models(work)
        save(out)
        print("models", json.dumps(RESULTS["models"])[:1500], flush=True)
    prompts = work / "prompts.jsonl"
    write_jsonl(prompts, random_prompts())

    if "agreement" not in skip:
        agreement_part(small, work, out)
    if "long" not in skip and "ftimg_4096" not in RESULTS["cases"]:
        RESULTS["cases"]["ftimg_4096"] = ftimg(big, long_prompts(work), work / "ftimg-4096" / "out.jsonl", 300)
        print("ftimg_4096", json.dumps(RESULTS["cases"]["ftimg_4096"])[:1500], flush=True)
        save(out)
    repeat_runs(big, prompts, work, out, args.repeats, deadline)

    RESULTS.setdefault("call_seconds", []).append(round(time.time() - started, 1))
    save(out)
    (out / "infer-table.md").write_text(table() + "\n")
    plot(out / "infer.png")
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
