"""Training and generation speed of the ftimg jobs against the plain scripts the seeds use, in one run.

    PYTHONPATH=entrypoints python benchmarks/speed_benchmark.py --out bench-out            # one NVIDIA GPU
    PYTHONPATH=entrypoints python benchmarks/speed_benchmark.py --out bench-out --tiny     # CPU smoke run

Makes a Llama-2-7B-shaped model with random weights (hidden 4096, 32 layers, 32 heads,
MLP 11008, vocab 32000), then runs every case in its own process: the baseline
(transformers + PEFT as the seeds do it) and the ftimg job path, same model, LoRA
rank and targets, sequence length, batch and precision. Writes results.json,
performance.png and table.md under --out and prints the ratio table last.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from speed_report import comparison_rows, format_table, plot  # noqa: E402

INFER_PROMPTS = 256
INFER_SUBSET_EVERY = 32  # one-at-a-time generation is timed on every 32nd prompt (same length mix)


def training_cases(seq: int, varlen_seq: int) -> list:
    fixed = {"seq": seq, "batch": 1, "data": "fixed", "gc": False, "argv": []}
    varlen = {"seq": varlen_seq, "batch": 4, "data": "varlen", "gc": False, "argv": []}
    return [
        {**fixed, "name": "baseline-qlora-gc", "path": "baseline", "method": "qlora", "gc": True},
        {**fixed, "name": "ftimg-qlora-24gib", "path": "ftimg", "method": "qlora",
         "argv": ["--gpu_memory_budget_gib", "24"]},
        {**fixed, "name": "ftimg-qlora-lean", "path": "ftimg", "method": "qlora",
         "argv": ["--gradient_checkpointing", "True"]},
        {**fixed, "name": "baseline-lora-gc", "path": "baseline", "method": "lora", "gc": True},
        {**fixed, "name": "ftimg-lora-24gib", "path": "ftimg", "method": "lora",
         "argv": ["--gpu_memory_budget_gib", "24"]},
        {**varlen, "name": "baseline-varlen-padded", "path": "baseline", "method": "lora", "gc": True},
        {**varlen, "name": "ftimg-varlen", "path": "ftimg", "method": "lora"},
        {**fixed, "name": "ftimg-full", "path": "ftimg", "method": "full"},
    ]


def default_budget_cases(seq: int) -> list:
    """The jobs with no memory flag: the budget is 90% of the GPU, so fewer layers are checkpointed."""
    fixed = {"seq": seq, "batch": 1, "data": "fixed", "gc": False, "argv": []}
    return [{**fixed, "name": "ftimg-qlora-default", "path": "ftimg", "method": "qlora"},
            {**fixed, "name": "ftimg-lora-default", "path": "ftimg", "method": "lora"}]


def infer_cases(work: Path, max_new_tokens: int) -> list:
    all_prompts = work / "prompts.jsonl"
    subset = work / "prompts-subset.jsonl"
    lines = all_prompts.read_text().splitlines()
    subset.write_text("\n".join(lines[::INFER_SUBSET_EVERY]) + "\n")
    return [
        {"name": "infer-one-at-a-time", "infer": {"input_path": str(subset), "max_new_tokens": max_new_tokens,
                                                  "argv": ["--batch_size", "1"]}},
        {"name": "infer-batched", "infer": {"input_path": str(all_prompts), "max_new_tokens": max_new_tokens}},
    ]


def run_case(case: dict, timeout_s: float) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    started = time.time()
    try:
        completed = subprocess.run([sys.executable, str(HERE / "speed_cases.py"), json.dumps(case)], env=env,
                                   capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s"}
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr or completed.stdout)[-2500:]
        return {"error": f"exit {completed.returncode}", "log_tail": tail, "wall_s": time.time() - started}
    return {**json.loads(lines[-1][len("RESULT "):]), "wall_s": time.time() - started}


def environment() -> dict:
    import torch

    versions = {}
    for name in ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "liger-kernel", "triton"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    memory = torch.cuda.get_device_properties(0).total_memory / 2 ** 30 if gpu else None
    return {"python": platform.python_version(), "versions": versions, "gpu": gpu, "gpu_memory_gib": memory,
            "cuda": torch.version.cuda}


def make_inputs(work: Path, model_dir: Path, tiny: bool, prompt_range: tuple) -> None:
    from speed_model import LLAMA2_7B, TINY, prompt_texts

    if not (model_dir / "config.json").exists():
        subprocess.run([sys.executable, "-c", "import sys; from speed_model import make_model; "
                        f"make_model({str(model_dir)!r}, {tiny})"], cwd=HERE, check=True)
    vocab = (TINY if tiny else LLAMA2_7B)["vocab_size"]
    prompts = prompt_texts(INFER_PROMPTS, *prompt_range, vocab)
    (work / "prompts.jsonl").write_text("".join(json.dumps({"id": i, "prompt": text}) + "\n"
                                                for i, text in enumerate(prompts)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for results.json, performance.png, table.md")
    parser.add_argument("--work", default=None, help="scratch directory for the model and runs (default: OUT/work)")
    parser.add_argument("--tiny", action="store_true", help="2-layer model, sequence 128: a quick end-to-end check")
    parser.add_argument("--steps", type=int, default=12, help="training steps per case, warm-up included")
    parser.add_argument("--warmup", type=int, default=3, help="steps left out of the median")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--only", default="", help="comma-separated case names to run (default: all)")
    parser.add_argument("--deadline-s", type=float, default=0, help="skip cases once this many seconds have passed")
    parser.add_argument("--case-timeout-s", type=float, default=180)
    args = parser.parse_args()

    started = time.time()
    out = Path(args.out)
    work = Path(args.work) if args.work else out / "work"
    work.mkdir(parents=True, exist_ok=True)
    model_dir = work / ("tiny-llama" if args.tiny else "llama2-7b-random")
    seq, varlen_seq, prompt_range = (128, 96, (8, 64)) if args.tiny else (4096, 2048, (16, 512))
    make_inputs(work, model_dir, args.tiny, prompt_range)
    common = {"steps": args.steps, "warmup": args.warmup, "model_dir": str(model_dir), "work_dir": str(work)}
    ordered = training_cases(seq, varlen_seq) + infer_cases(work, args.max_new_tokens) + default_budget_cases(seq)
    cases = [{**case, **common} for case in ordered]
    only = {name for name in args.only.split(",") if name}
    results = {"environment": environment(), "settings": {
        "model": "tiny" if args.tiny else "Llama-2-7B shape, random bf16 weights", "seq": seq,
        "varlen": {"lengths": f"uniform integers in [50, {varlen_seq}]", "batch": 4},
        "lora": "r=8, alpha=16, dropout=0.05, q/k/v/o/gate/up/down", "steps": args.steps, "warmup": args.warmup,
        "infer": {"prompts": INFER_PROMPTS, "prompt_tokens": f"uniform in [{prompt_range[0]}, {prompt_range[1]}]",
                  "max_new_tokens": args.max_new_tokens,
                  "one_at_a_time_subset": f"every {INFER_SUBSET_EVERY}th prompt"}},
        "cases": {}}
    print(json.dumps(results["environment"]), flush=True)
    for case in cases:
        if only and case["name"] not in only:
            continue
        if args.deadline_s and time.time() - started > args.deadline_s:
            results["cases"][case["name"]] = {"skipped": "benchmark deadline reached"}
            continue
        remaining = args.deadline_s - (time.time() - started) if args.deadline_s else args.case_timeout_s
        result = run_case(case, min(args.case_timeout_s, max(remaining, 30)))
        results["cases"][case["name"]] = {**result, "case": {k: v for k, v in case.items()
                                                             if k not in ("model_dir", "work_dir")}}
        print(case["name"], json.dumps(result)[:1500], flush=True)
        (out / "results.json").write_text(json.dumps(results, indent=1))
    rows = comparison_rows(results["cases"])
    table = format_table(rows)
    (out / "table.md").write_text(table + "\n")
    if rows:
        plot(results["cases"], out / "performance.png", title=results["environment"]["gpu"] or "CPU")
    print(f"total {time.time() - started:.0f} s")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
