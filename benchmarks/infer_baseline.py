"""The infer benchmark's baseline: what a user writes without ftimg, timed from process start.

    python benchmarks/infer_baseline.py --model DIR --prompts prompts.jsonl --output out.jsonl \\
        --max-new-tokens 128 --batch-size 64

transformers' `model.generate`, eager, dynamic KV cache; prompts sorted by length and
left-padded into batches of --batch-size; greedy; EOS ignored (every record generates
--max-new-tokens). The model loads straight onto the GPU (device_map), as the job does.
Writes one {"id", "generated_text"} line per prompt and prints a RESULT line with timings.
"""

import argparse
import json
import time

STARTED = time.time()  # before torch is imported: the wall time a user waits

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompts", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16, device_map="cuda").eval()
    loaded = time.time()
    records = [json.loads(line) for line in open(args.prompts, encoding="utf-8")]
    ids = {record["id"]: tokenizer(record["prompt"])["input_ids"] for record in records}
    order = sorted(ids, key=lambda key: -len(ids[key]))
    model.generation_config.eos_token_id = None  # generate() fills unset fields from here; EOS stays off
    config = GenerationConfig(max_new_tokens=args.max_new_tokens, do_sample=False, eos_token_id=None,
                              pad_token_id=tokenizer.pad_token_id)
    generated, tokens = {}, 0
    torch.cuda.synchronize()
    generate_started = time.time()
    for start in range(0, len(order), args.batch_size):
        batch = [ids[key] for key in order[start:start + args.batch_size]]
        width = max(len(row) for row in batch)
        input_ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(row)) + row for row in batch], device="cuda")
        mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in batch], device="cuda")
        with torch.inference_mode():
            output = model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config)
        for key, row in zip(order[start:start + args.batch_size], output[:, width:].tolist()):
            generated[key] = tokenizer.decode(row, skip_special_tokens=True)
            tokens += len(row)
    torch.cuda.synchronize()
    generate_seconds = time.time() - generate_started
    with open(args.output, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps({"id": record["id"], "generated_text": generated[record["id"]]}) + "\n")
    print("RESULT " + json.dumps({
        "generated_tokens": tokens, "generate_seconds": round(generate_seconds, 3),
        "tokens_per_second": round(tokens / generate_seconds, 1), "load_seconds": round(loaded - STARTED, 2),
        "wall_seconds": round(time.time() - STARTED, 2),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
