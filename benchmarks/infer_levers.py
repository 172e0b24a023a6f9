"""What each lever of the static infer engine is worth on one GPU, measured in one process.

    PYTHONPATH=entrypoints:benchmarks python benchmarks/infer_levers.py --out levers-out

On the issue's case (1,024 prompts of 16-512 tokens, 128 new tokens, greedy, EOS ignored,
Llama-2-7B shape with random bf16 weights) it times: loading the model two ways, the
engine with its default batch and with fixed batches, each row reading only its own cache
columns (`decode_attention="flex"` and `"flash4"`, each alternating with the masked decode), eager
`model.generate` on a slice
of the same prompts,
transformers' continuous batching (`generate_batch`) on a slice, and the agreement of the
engine with eager greedy decoding on a small model trained to copy (infer_workload.py).
Writes levers.json under --out after every step, so a cut-off run still reports.
(The first run also timed the step compiled by torch.compile before capture: 76 s to
compile, 45-55 ms a step at 128 rows against 16-18 ms captured eager; the engine has
no compile option since.)
"""

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import torch

from infer_workload import NEW_TOKENS, chain_prompts, random_prompts, top2_margin, train_copy_model, with_bos

RESULTS: dict = {}


def record(out: Path, name: str, value) -> None:
    RESULTS[name] = value
    print(name, json.dumps(value)[:2000], flush=True)
    (out / "levers.json").write_text(json.dumps(RESULTS, indent=1))


def timed(function):
    torch.cuda.synchronize()
    started = time.time()
    value = function()
    torch.cuda.synchronize()
    return value, time.time() - started


def run_engine(model, prompts: dict, max_new_tokens: int = NEW_TOKENS, **overrides) -> dict:
    from ftimg_jobs.generate.sampling import SamplingSettings
    from ftimg_jobs.generate.static_engine import EngineSettings, StaticEngine

    settings = EngineSettings(max_new_tokens=max_new_tokens, sampling=SamplingSettings(), eos_token_ids=frozenset(),
                              pad_token_id=0, **overrides)
    outputs = {}
    torch.cuda.reset_peak_memory_stats()
    engine = StaticEngine(model, settings, torch.device("cuda"))
    stats, seconds = timed(lambda: engine.generate(
        prompts, lambda done: outputs.update({f.record_id: f.token_ids for f in done})))
    tokens = sum(len(ids) for ids in outputs.values())
    return {"outputs": outputs, "seconds": round(seconds, 2), "tokens": tokens, "tok_s": round(tokens / seconds, 1),
            "tok_s_after_capture": round(tokens / (seconds - stats.capture_seconds), 1),
            "capture_s": round(stats.capture_seconds, 2), "prefill_s": round(stats.prefill_seconds, 2),
            "decode_s": round(stats.decode_seconds, 2), "graphs": stats.graphs,
            "segments": [{**s, "ms_per_step": round(1000 * s["decode_seconds"] / max(s["decode_steps"], 1), 2)}
                         for s in stats.segments],
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)}


def eager_generate(model, prompts: dict, batch: int, max_new_tokens: int = NEW_TOKENS) -> dict:
    """The baseline: model.generate, dynamic cache, left-padded batches of sorted prompts, EOS ignored."""
    from transformers import GenerationConfig

    model.generation_config.eos_token_id = None  # generate() fills unset fields from here; EOS must stay off
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=0, eos_token_id=None)
    order = sorted(prompts, key=lambda index: -len(prompts[index]))
    outputs = {}
    for start in range(0, len(order), batch):
        ids = [prompts[index] for index in order[start:start + batch]]
        width = max(len(row) for row in ids)
        input_ids = torch.tensor([[0] * (width - len(row)) + row for row in ids], device=model.device)
        mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in ids], device=model.device)
        with torch.inference_mode():
            generated = model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config)
        for index, row in zip(order[start:start + batch], generated[:, width:].tolist()):
            outputs[index] = row
    return outputs


def agreement(first: dict, second: dict) -> dict:
    same = sum(first[index] == second[index] for index in first)
    tokens = sum(sum(a == b for a, b in zip(first[index], second[index])) for index in first)
    return {"records_identical": same, "records": len(first), "share": round(same / len(first), 4),
            "tokens_identical_share": round(tokens / sum(len(v) for v in first.values()), 4)}


def flash4_switched(model):
    """Switch `model` to FlashAttention-4 (prefill and decode, as the job does); why not, or None."""
    from ftimg_jobs.model.flash4_attention import import_problem, use_flash4_attention

    return import_problem() or use_flash4_attention(model)


def decode_attention_lever(out: Path, model, prompts: dict) -> None:
    """FlashAttention-4 reading each row's own columns against the masked SDPA decode, alternating in one process.

    Both sides prefill with FlashAttention-4 (the job's attention where flash-attn-4 is installed);
    only the captured decode step's attention differs. The first flash4 run compiles its decode
    kernel (or loads it from the kernel cache): its capture_s shows that cost.
    """
    loaded = model.config._attn_implementation
    problem = flash4_switched(model)
    if problem:
        record(out, "decode_attention_flash4", {"skipped": problem})
        return
    for repeat in (1, 2, 3):
        outputs = {}
        for mode in ("flash4", "mask"):
            result = run_engine(model, prompts, decode_attention=mode)
            record(out, f"decode_attention_{mode}_r{repeat}", {k: v for k, v in result.items() if k != "outputs"})
            outputs[mode] = result["outputs"]
        if repeat == 1:
            record(out, "decode_attention_flash4_vs_mask_random_7b", agreement(outputs["mask"], outputs["flash4"]))
    model.config._attn_implementation = loaded  # back to the loaded attention for the parts after


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--work", default="/tmp/infer-levers", help="scratch directory for the models")
    parser.add_argument("--skip", default="", help="comma-separated steps to leave out")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    skip = set(args.skip.split(","))
    from transformers import AutoModelForCausalLM

    from speed_model import make_model

    record(out, "environment", {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
                                "transformers": __import__("transformers").__version__})
    model_dir = Path(args.work) / "llama2-7b-random"
    if not (model_dir / "config.json").exists():  # infer_benchmark.py's --work holds the same model
        _, seconds = timed(lambda: make_model(str(model_dir), tiny=False))
        record(out, "make_model_s", round(seconds, 1))
    prompts = with_bos(random_prompts())

    model, seconds = timed(lambda: AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16,
                                                                        device_map="cuda"))
    record(out, "load_device_map_cuda_s", round(seconds, 1))
    model.eval()

    default = run_engine(model, prompts)
    record(out, "engine_default", {k: v for k, v in default.items() if k != "outputs"})
    for slots in ([] if "slots" in skip else [64, 128]):
        result = run_engine(model, prompts, max_slots=slots)
        record(out, f"engine_slots_{slots}", {k: v for k, v in result.items() if k != "outputs"})

    if "flex" not in skip:
        # Each row reading only its own cache columns (decode_attention.py), alternating with the default;
        # the first flex run pays flex_attention's compiles (one per graph shape), the second finds them cached.
        for repeat in (1, 2):
            flex = run_engine(model, prompts, decode_attention="flex")
            record(out, f"engine_flex_decode_r{repeat}", {k: v for k, v in flex.items() if k != "outputs"})
            again = run_engine(model, prompts)
            record(out, f"engine_default_r{repeat + 1}", {k: v for k, v in again.items() if k != "outputs"})

    if "flash4" not in skip:
        decode_attention_lever(out, model, prompts)

    if "eager" not in skip:
        order = sorted(prompts, key=lambda index: -len(prompts[index]))
        middle = {index: prompts[index] for index in order[448:576]}  # 128 prompts of middle length, 2 batches
        eager, seconds = timed(lambda: eager_generate(model, middle, 64))
        tokens = sum(len(v) for v in eager.values())
        record(out, "eager_generate_b64_128prompts", {"seconds": round(seconds, 2), "tok_s": round(tokens / seconds, 1),
                                                      "agreement_with_engine": agreement(
                                                          {i: default["outputs"][i] for i in middle}, eager)})
        record(out, "margin_random_7b", round(top2_margin(model, random_prompts(64)), 4))

    if "cb" not in skip:
        from transformers import GenerationConfig

        subset = [prompts[index] for index in list(prompts)[:256]]
        config = GenerationConfig(max_new_tokens=64, do_sample=False, pad_token_id=0, eos_token_id=None)
        try:
            result, seconds = timed(lambda: model.generate_batch(inputs=subset, generation_config=config))
            tokens = sum(len(output.generated_tokens) for output in result.values())
            record(out, "hf_generate_batch_256x64", {"seconds": round(seconds, 2), "tok_s": round(tokens / seconds, 1)})
        except Exception as error:
            record(out, "hf_generate_batch_256x64", {"error": repr(error)[:1500]})

    del model
    gc.collect()
    torch.cuda.empty_cache()
    if "agreement" not in skip:
        copy_dir = Path(args.work) / "copy-model"
        stats, seconds = timed(lambda: train_copy_model(copy_dir))
        record(out, "copy_model_training", {**stats, "seconds": round(seconds, 1)})
        small = AutoModelForCausalLM.from_pretrained(copy_dir, dtype=torch.bfloat16, device_map="cuda").eval()
        chain = with_bos(chain_prompts())
        record(out, "margin_copy_model", round(top2_margin(small, chain_prompts(64)), 3))
        engine = run_engine(small, chain)
        eager, seconds = timed(lambda: eager_generate(small, chain, 64))
        record(out, "agreement_copy_model", {**agreement(eager, engine["outputs"]), "engine_tok_s": engine["tok_s"],
                                             "eager_s": round(seconds, 1)})
        if "flex" not in skip:
            flex = run_engine(small, chain, decode_attention="flex")
            record(out, "agreement_copy_model_flex_decode", agreement(eager, flex["outputs"]))
        if "flash4" not in skip and flash4_switched(small) is None:
            flash4 = run_engine(small, chain, decode_attention="flash4")
            record(out, "agreement_copy_model_flash4", {**agreement(eager, flash4["outputs"]), "tok_s": flash4["tok_s"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
