"""The infer job at the GPU's speed: `ftimg_jobs infer` (its defaults) against eager model.generate, in one run.

    PYTHONPATH=entrypoints:benchmarks python benchmarks/infer_benchmark.py --out infer-bench    # one NVIDIA GPU

Case (issue 12): 1,024 prompts of 16-512 tokens (uniform, seeded), 128 new tokens each,
greedy, EOS ignored so every record generates 128; a Llama-2-7B-shaped model with random
bf16 weights (speed_model.py). Each side runs in its own process, timed from its start:
- baseline (infer_baseline.py): model.generate, eager, dynamic cache, batch 64, sorted, left-padded;
- ftimg: `python -m ftimg_jobs infer --ignore_eos True` with every other flag at its default.
Then: greedy agreement of the two on a small model trained to copy (infer_workload.py says
why a random model cannot measure it), and the job's default batch at 4,096-token prompts.
Writes results.json, infer-table.md and infer.png under --out; prints the table last.
"""

import argparse
import json
import os
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
    result = run([sys.executable, "-m", "ftimg_jobs", "infer", "--model_name_or_path", str(model),
                  "--input_path", str(prompts), "--output_path", str(output), "--max_new_tokens", str(NEW_TOKENS),
                  "--ignore_eos", "True", *flags], timeout)
    result.pop("stdout", None)
    manifest_path = output.parent / "run.json"
    if result.get("exit_code") != 0 or not manifest_path.exists():
        return result
    manifest = json.loads(manifest_path.read_text())
    metrics = manifest["metrics"]
    return {**result, "generated_tokens": metrics["generated_tokens"], "generate_seconds": metrics["generate_seconds"],
            "tokens_per_second": metrics["tokens_per_second"], "warmup_seconds": metrics["warmup_seconds"],
            "job_wall_seconds": manifest["wall_time_s"],
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


def plot(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    main = RESULTS["cases"]
    base, fast = main.get("baseline", {}), main.get("ftimg", {})
    if "tokens_per_second" not in base or "tokens_per_second" not in fast:
        return
    figure, (rate, wall) = plt.subplots(1, 2, figsize=(9, 3.6))
    labels = ["model.generate\n(eager, batch 64)", "ftimg infer\n(defaults)"]
    rate.bar(labels, [base["tokens_per_second"], fast["tokens_per_second"]], color=["#999999", "#2a7ab9"])
    rate.set_ylabel("generated tokens / s")
    rate.set_title(f"{fast['tokens_per_second'] / base['tokens_per_second']:.1f}x tokens/s")
    wall.bar(labels, [base["wall_seconds"], fast["wall_seconds"]], color=["#999999", "#2a7ab9"])
    wall.set_ylabel("seconds, process start to exit")
    wall.set_title(f"{base['wall_seconds'] / fast['wall_seconds']:.1f}x faster end to end")
    figure.suptitle(f"1,024 prompts of 16-512 tokens, 128 new tokens, Llama-2-7B shape, {RESULTS.get('gpu')}",
                    fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def table() -> str:
    cases = RESULTS["cases"]
    base, fast = cases.get("baseline", {}), cases.get("ftimg", {})
    rows = ["| | baseline (model.generate, batch 64) | ftimg infer (defaults) | ratio |", "|---|---:|---:|---:|"]

    def row(name, key, digits=0, ratio=None):
        a, b = base.get(key), fast.get(key)
        shown = [f"{v:,.{digits}f}" if isinstance(v, (int, float)) else "-" for v in (a, b)]
        value = ratio(a, b) if ratio and isinstance(a, (int, float)) and isinstance(b, (int, float)) else "-"
        rows.append(f"| {name} | {shown[0]} | {shown[1]} | {value} |")

    row("generated tokens/s", "tokens_per_second", 0, lambda a, b: f"{b / a:.2f}x")
    row("generate seconds", "generate_seconds", 1, lambda a, b: f"{a / b:.2f}x")
    row("wall seconds (process start to exit: load, compile/capture, generate, write)", "wall_seconds", 1,
        lambda a, b: f"{a / b:.2f}x")
    row("warm-up (graph capture) seconds", "warmup_seconds", 1)
    row("peak GPU memory GiB", "peak_gpu_memory_gib", 1)
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for results.json, infer-table.md, infer.png")
    parser.add_argument("--work", default="/tmp/infer-bench", help="scratch directory for models and outputs")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: agreement,long")
    args = parser.parse_args()
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    skip = set(args.skip.split(","))
    started = time.time()
    import torch

    RESULTS["gpu"] = torch.cuda.get_device_name()
    RESULTS["versions"] = {"torch": torch.__version__, "transformers": __import__("transformers").__version__}
    make_models(work)
    save(out)
    print("models", json.dumps(RESULTS["models"])[:1500], flush=True)
    big, small = work / "llama2-7b-random", work / "copy-model"
    prompts = work / "prompts.jsonl"
    write_jsonl(prompts, random_prompts())

    cases = RESULTS["cases"]
    cases["ftimg"] = ftimg(big, prompts, work / "ftimg" / "out.jsonl", 300)
    print("ftimg", json.dumps(cases["ftimg"])[:2500], flush=True)
    save(out)
    cases["baseline"] = baseline(big, prompts, work / "baseline.jsonl", 400)
    print("baseline", json.dumps(cases["baseline"])[:1500], flush=True)
    if "tokens_per_second" in cases["baseline"] and "tokens_per_second" in cases["ftimg"]:
        RESULTS["agreement_random_7b"] = agreement(work / "baseline.jsonl", work / "ftimg" / "out.jsonl")
    save(out)

    if "long" not in skip:
        cases["ftimg_4096"] = ftimg(big, long_prompts(work), work / "ftimg-4096" / "out.jsonl", 300)
        print("ftimg_4096", json.dumps(cases["ftimg_4096"])[:1500], flush=True)
        save(out)
    if "agreement" not in skip:
        chains = work / "chains.jsonl"
        write_jsonl(chains, chain_prompts())
        cases["copy_baseline"] = baseline(small, chains, work / "copy-baseline.jsonl", 300)
        cases["copy_ftimg"] = ftimg(small, chains, work / "copy-ftimg" / "out.jsonl", 300)
        if cases["copy_ftimg"].get("exit_code") == 0 and cases["copy_baseline"].get("exit_code") == 0:
            RESULTS["agreement_copy_model"] = agreement(work / "copy-baseline.jsonl",
                                                        work / "copy-ftimg" / "out.jsonl")
        print("agreement", json.dumps(RESULTS.get("agreement_copy_model")), flush=True)
        save(out)

    RESULTS["total_seconds"] = round(time.time() - started, 1)
    save(out)
    (out / "infer-table.md").write_text(table() + "\n")
    plot(out / "infer.png")
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
