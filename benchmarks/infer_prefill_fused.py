"""One prefill forward of a 7B model, as transformers runs it and with Liger's fused kernels (one GPU, one process).

    PYTHONPATH=entrypoints:benchmarks python benchmarks/infer_prefill_fused.py --out fused-out [--model DIR]

A profile of the infer engine's prefill (docs/performance.md, infer) found its matrix products near
the GPU's peak and about a third of a call in small element-wise kernels: RMSNorm's float32 steps,
RoPE's rotate-half copies, SwiGLU's activation and product. This measures what Liger's fused
RMSNorm, RoPE and SwiGLU kernels (liger-kernel, installed in the cu130 image for training) take off
one call of PREFILL_TOKENS tokens (32 rows of 512, no mask), before any change to the job:

- two copies of the Llama-2-7B-shaped model (random bf16 weights, speed_model.py) on the GPU,
  one as loaded, one with Liger's RMSNorm and SwiGLU modules (its RoPE function is module-wide
  in transformers, so it is switched in for that copy's runs only);
- 5 timed forwards each after 3 warm-up ones, alternating 3 times; the medians and the ratio;
- one profiled forward of each: CUDA time in matrix products, attention and everything else;
- the largest difference between the two copies' last hidden states (bf16 rounding expected).

Writes prefill-fused.json under --out.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROWS, WIDTH, WARMUP, TIMED, ROUNDS = 32, 512, 3, 5, 3


def category(name: str) -> str:
    lowered = name.lower()
    if any(mark in lowered for mark in ("gemm", "nvjet", "cutlass_80", "sm90_xmma", "cublas")):
        return "matrix products"
    if any(mark in lowered for mark in ("flash", "fmha", "attention")):
        return "attention"
    return "other (element-wise, copies, norms)"


def profile_ms(forward) -> dict:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        forward()
        torch.cuda.synchronize()
    totals: dict = {}
    for event in prof.key_averages():
        if event.device_type.name == "CUDA":
            key = category(event.key)
            totals[key] = totals.get(key, 0.0) + event.self_device_time_total / 1000
    return {key: round(value, 1) for key, value in sorted(totals.items())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", default="/tmp/infer-bench/llama2-7b-random",
                        help="a Llama-2-7B-shaped model directory (made here when missing)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from liger_kernel.transformers.monkey_patch import apply_liger_kernel_to_llama
    from liger_kernel.transformers.rope import liger_rotary_pos_emb
    from transformers import AutoModelForCausalLM
    from transformers.models.llama import modeling_llama

    from speed_model import make_model

    if not (Path(args.model) / "config.json").exists():
        make_model(args.model, tiny=False)
    load = lambda: AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16,  # noqa: E731
                                                        device_map="cuda").eval()
    plain, fused = load(), load()
    hf_rope = modeling_llama.apply_rotary_pos_emb
    apply_liger_kernel_to_llama(rope=False, rms_norm=True, swiglu=True, fused_linear_cross_entropy=False,
                                model=fused)
    ids = torch.randint(3, plain.config.vocab_size, (ROWS, WIDTH), device="cuda")
    positions = torch.arange(WIDTH, device="cuda").expand(ROWS, WIDTH)

    def forward(model):
        modeling_llama.apply_rotary_pos_emb = liger_rotary_pos_emb if model is fused else hf_rope
        return model.model(input_ids=ids, position_ids=positions, use_cache=False).last_hidden_state

    def timed_ms(model) -> list:
        for _ in range(WARMUP):
            forward(model)
        times = []
        for _ in range(TIMED):
            torch.cuda.synchronize()
            started = time.perf_counter()
            forward(model)
            torch.cuda.synchronize()
            times.append((time.perf_counter() - started) * 1000)
        return times

    results: dict = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
                     "liger_kernel": __import__("importlib.metadata").metadata.version("liger-kernel"),
                     "tokens_per_call": ROWS * WIDTH, "plain_ms": [], "fused_ms": []}
    with torch.inference_mode():
        for _ in range(ROUNDS):
            results["plain_ms"] += timed_ms(plain)
            results["fused_ms"] += timed_ms(fused)
        difference = (forward(plain).float() - forward(fused).float()).abs()
        results["max_abs_difference_last_hidden"] = round(difference.max().item(), 4)
        results["mean_abs_difference_last_hidden"] = round(difference.mean().item(), 5)
        results["profile_plain_ms"] = profile_ms(lambda: forward(plain))
        results["profile_fused_ms"] = profile_ms(lambda: forward(fused))
    modeling_llama.apply_rotary_pos_emb = hf_rope
    plain_ms, fused_ms = statistics.median(results["plain_ms"]), statistics.median(results["fused_ms"])
    results["median_ms"] = {"plain": round(plain_ms, 1), "fused": round(fused_ms, 1)}
    results["speedup"] = round(plain_ms / fused_ms, 3)
    results["tokens_per_second"] = {"plain": round(ROWS * WIDTH / plain_ms * 1000),
                                    "fused": round(ROWS * WIDTH / fused_ms * 1000)}
    (out / "prefill-fused.json").write_text(json.dumps(results, indent=1))
    print(json.dumps({key: value for key, value in results.items() if not key.endswith("_ms")}, indent=1))
    print("profiles", results["profile_plain_ms"], results["profile_fused_ms"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
