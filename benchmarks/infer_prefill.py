"""Prefill of the static infer engine, two ways, on the infer benchmark's prompts (one GPU, one process).

    PYTHONPATH=entrypoints:benchmarks python benchmarks/infer_prefill.py --model DIR --out prefill-out

DIR is a Llama-2-7B-shaped model (infer_benchmark.py leaves one in its --work directory).
The prompts are the benchmark's (16-512 tokens, uniform, seeded, with BOS), prefilled as the
engine does it: sorted longest first, 256 slots of one KV cache at a time, calls of at most
PREFILL_TOKENS padded tokens. Timed, alternating so neither way gets the warm GPU alone:
- masked: left-padded rows and an explicit boolean 4D mask (the engine's first prefill; SDPA
  cannot take its flash kernel with a mask);
- causal: right-padded rows and no mask (the engine now: SDPA's causal flash kernel);
- causal at twice the tokens per call.
The first pass of each way includes first-use costs (kernel loading, library handles).
Writes prefill.json under --out.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from infer_workload import random_prompts, with_bos

SLOTS = 256


def masked_prefill(run, slots, prompts):
    """The engine's earlier prefill: left padding, a boolean (rows, 1, width, width) mask, logits of the last column."""
    device, model = run.engine.device, run.engine.model
    width = max(len(ids) for ids in prompts)
    ids = torch.tensor([[0] * (width - len(p)) + list(p) for p in prompts], device=device)
    starts = torch.tensor([width - len(p) for p in prompts], device=device)
    columns = torch.arange(width, device=device)
    own = columns[None, :] >= starts[:, None]
    causal = columns[None, :] <= columns[:, None]
    visible = (causal[None] & own[:, None, :]) | torch.eye(width, dtype=torch.bool, device=device)[None]
    positions = (columns[None, :] - starts[:, None]).clamp(min=0)
    run.full.write_rows = torch.tensor(list(slots), device=device)
    try:
        logits = model(input_ids=ids, attention_mask=visible[:, None], position_ids=positions,
                       past_key_values=run.full, use_cache=True, logits_to_keep=1).logits
    finally:
        run.full.write_rows = None
    return logits[:, -1, :].argmax(dim=-1).tolist()


def one_pass(run, prompts: dict, order: list, way) -> dict:
    from ftimg_jobs.generate import static_engine

    torch.cuda.synchronize()
    started, calls, padded = time.time(), 0, 0
    with torch.inference_mode():
        for first in range(0, len(order), SLOTS):
            wave = order[first:first + SLOTS]
            for slots, ids in static_engine.prefill_groups(list(range(len(wave))), wave, prompts):
                rows = [prompts[i] for i in ids]
                way(run, slots, rows)
                calls += 1
                padded += max(map(len, rows)) * len(rows)
    torch.cuda.synchronize()
    seconds = time.time() - started
    tokens = sum(len(prompts[i]) for i in order)
    return {"seconds": round(seconds, 3), "calls": calls, "prompt_tokens": tokens, "padded_tokens": padded,
            "prompt_tokens_per_second": round(tokens / seconds)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--prompts", type=int, default=512, help="how many of the benchmark's prompts (by id)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from transformers import AutoModelForCausalLM

    from ftimg_jobs.generate import static_engine
    from ftimg_jobs.generate.sampling import SamplingSettings
    from ftimg_jobs.generate.scheduler import Segment

    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16, device_map="cuda").eval()
    prompts = {i: ids for i, ids in with_bos(random_prompts()).items() if i < args.prompts}
    order = sorted(prompts, key=lambda i: -len(prompts[i]))
    settings = static_engine.EngineSettings(max_new_tokens=128, sampling=SamplingSettings(),
                                            eos_token_ids=frozenset(), pad_token_id=0)
    engine = static_engine.StaticEngine(model, settings, torch.device("cuda"))
    longest = max(map(len, prompts.values()))
    run = static_engine.SegmentRun(engine, Segment(cache_length=-(-(longest + 128) // 64) * 64, slots=SLOTS, ids=()))
    ways = {"masked": masked_prefill, "causal": static_engine.SegmentRun.prefill}
    results = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
               "prefill_tokens_per_call": static_engine.PREFILL_TOKENS, "passes": []}
    for attempt in range(2):
        for name, way in ways.items():
            results["passes"].append({"way": name, "pass": attempt + 1, **one_pass(run, prompts, order, way)})
            print(json.dumps(results["passes"][-1]), flush=True)
            (out / "prefill.json").write_text(json.dumps(results, indent=1))
    static_engine.PREFILL_TOKENS *= 2
    results["passes"].append({"way": f"causal, {static_engine.PREFILL_TOKENS} tokens a call", "pass": 1,
                              **one_pass(run, prompts, order, static_engine.SegmentRun.prefill)})
    print(json.dumps(results["passes"][-1]), flush=True)
    (out / "prefill.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
