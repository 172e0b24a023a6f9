"""infer: batch generation from a JSONL file of prompts to a JSONL file of completions.

Launch:
  python -m ftimg_jobs infer                                   # embedded tiny model + sample prompts
  python -m ftimg_jobs infer --model_name_or_path MODEL --input_path prompts.jsonl \\
      --output_path out/predictions.jsonl --batch_size 16 --max_new_tokens 256
  python -m ftimg_jobs infer --adapter_name_or_path out/lora --input_path prompts.jsonl --output_path out/p.jsonl
  NPROC_PER_NODE=2 python -m ftimg_jobs infer ...              # one process per GPU (default: all GPUs)
  docker run --gpus all IMAGE infer ...                        # the same, inside the image

Input: one JSON object per line with an optional `id` (default: the 0-based line number)
and a prompt in any SFT format (`messages`, `conversations`, `instruction`/`input`, `prompt`).
Chat formats go through the tokenizer's chat template; a `prompt` string is continued
verbatim, the way the SFT jobs train prompt/completion records.
Output: one line per input id, in input order: {id, prompt, generated_text,
num_generated_tokens, finish_reason ("eos" | "length")}; run.json next to it (or in --output_dir).

Rerunning the same command after a crash or kill resumes: finished ids are kept,
the rest are generated, and the output ends with every id exactly once
(the bookkeeping is in infer_resume.py). Ranks take disjoint shares of the pending
prompts, longest first, in batches of similar length with left padding.
"""

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
from tqdm import tqdm

from ftimg_jobs.attention import CHOICES as ATTENTION_CHOICES
from ftimg_jobs.errors import JobError
from ftimg_jobs.infer_adapter import adapter_base_model
from ftimg_jobs.infer_batching import batches, rank_share, sort_longest_first
from ftimg_jobs.infer_generate import generate_batch, generation_config, prompt_token_ids, render_prompt
from ftimg_jobs.infer_input import read_input_records
from ftimg_jobs.infer_prompts import extract_prompt
from ftimg_jobs.infer_resume import (
    append_record,
    finished_records,
    part_path,
    pending_ids,
    truncate_torn_tail,
    write_final_output,
)
from ftimg_jobs.infer_runtime import Ranks, load_generation_model, parse_job_args, tokenizer_for
from ftimg_jobs.paths import default_model_path, sample_data
from ftimg_jobs.run_manifest import build_manifest, data_files_info, write_manifest
from ftimg_jobs.run_outputs import device_info, peak_gpu_memory_bytes


@dataclass
class InferArguments:
    model_name_or_path: Optional[str] = field(default=None, metadata={
        "help": "Base or merged model directory. Default: the adapter's base model, "
                "else the embedded tiny model (env FTIMG_DEFAULT_MODEL)"})
    adapter_name_or_path: Optional[str] = field(default=None, metadata={
        "help": "LoRA adapter directory to apply on top of the model (as saved by lora-sft/qlora-sft)"})
    input_path: str = field(default_factory=lambda: sample_data("prompts.jsonl"), metadata={
        "help": "JSONL file of prompts (default: the shipped sample prompts)"})
    output_path: str = field(default="output/infer/predictions.jsonl", metadata={
        "help": "JSONL file to write; rerun the same command to resume into it"})
    output_dir: Optional[str] = field(default=None, metadata={
        "help": "Directory for run.json (default: the directory of --output_path)"})
    batch_size: int = field(default=8, metadata={"help": "Prompts per generate() call on each GPU"})
    max_new_tokens: int = field(default=256, metadata={"help": "Most tokens generated per prompt"})
    do_sample: bool = field(default=False, metadata={"help": "Sample instead of greedy/beam search"})
    temperature: Optional[float] = field(default=None, metadata={"help": "Sampling temperature (default: the model's)"})
    top_p: Optional[float] = field(default=None, metadata={"help": "Nucleus sampling mass (default: the model's)"})
    top_k: Optional[int] = field(default=None, metadata={"help": "Top-k sampling (default: the model's)"})
    num_beams: int = field(default=1, metadata={"help": "Beam search width (1: greedy or sampling)"})
    seed: int = field(default=42, metadata={"help": "Random seed for sampling (offset by rank)"})
    torch_dtype: str = field(default="auto", metadata={
        "help": "auto (bf16/fp16 on GPU, fp32 on CPU), bfloat16, float16 or float32"})
    attn_implementation: str = field(default="auto", metadata={
        "help": "auto (flash-attn 2 if usable, else SDPA), flash_attention_2 (required), sdpa or eager",
        "choices": list(ATTENTION_CHOICES)})
    flash_attn: bool = field(default=False, metadata={
        "help": "Ask for flash-attn 2; falls back to SDPA with a warning when it cannot be used"})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow the model's own Python code"})


def check_arguments(args: InferArguments) -> None:
    problems = []
    if args.batch_size < 1:
        problems.append(f"--batch_size must be at least 1, got {args.batch_size}")
    if args.max_new_tokens < 1:
        problems.append(f"--max_new_tokens must be at least 1, got {args.max_new_tokens}")
    if args.num_beams < 1:
        problems.append(f"--num_beams must be at least 1, got {args.num_beams}")
    if args.num_beams > 1 and args.do_sample:
        problems.append("give either --do_sample or --num_beams > 1, not both")
    if not os.path.isfile(args.input_path):
        problems.append(f"--input_path {args.input_path}: no such file")
    if problems:
        raise JobError("infer: " + "; ".join(problems))


def main(job: str, argv: list) -> int:
    args = parse_job_args(InferArguments, job, argv)
    check_arguments(args)
    if not args.model_name_or_path:
        args.model_name_or_path = (adapter_base_model(args.adapter_name_or_path) if args.adapter_name_or_path
                                   else default_model_path())
    started = time.time()
    records = read_input_records(args.input_path, extract_prompt)
    input_ids = [record.id for record in records]
    tokenizer = tokenizer_for(args, args.adapter_name_or_path)
    texts = {record.id: render_prompt(tokenizer, record.prompt) for record in records}
    token_ids = {record.id: prompt_token_ids(tokenizer, record.prompt, texts[record.id]) for record in records}

    ranks = Ranks.from_environment()
    os.makedirs(os.path.dirname(os.path.abspath(args.output_path)), exist_ok=True)
    finished_before = finished_records(args.output_path, input_ids)
    # Every rank must see the same finished set before anyone appends, or the shares would differ.
    ranks.barrier()
    pending = pending_ids(input_ids, finished_before)
    mine = rank_share(sort_longest_first(pending, {i: len(token_ids[i]) for i in pending}), ranks.rank, ranks.world_size)

    stats = generate_share(args, ranks, tokenizer, texts, token_ids, mine)
    totals = ranks.gather_stats(stats)
    if ranks.rank == 0:
        written = write_final_output(args.output_path, input_ids)
        write_manifest(args.output_dir or os.path.dirname(os.path.abspath(args.output_path)),
                       infer_manifest(args, started, totals, len(input_ids), len(finished_before)))
        print(f"infer: wrote {written} records to {args.output_path} "
              f"({len(finished_before)} resumed, {len(input_ids) - len(finished_before)} generated)", flush=True)
    ranks.close()
    return 0


def generate_share(args, ranks: Ranks, tokenizer, texts: dict, token_ids: dict, mine: list) -> dict:
    """Generate this rank's ids in length-sorted batches, appending each record to the rank's part file."""
    stats = {"generated_records": len(mine), "generated_tokens": 0, "generate_seconds": 0.0,
             "attention": None, "dtype": None, "peak_gpu_memory_bytes": None}
    if not mine:
        return stats  # nothing left for this rank: skip loading the model
    model, device, dtype, stats["attention"] = load_generation_model(args, ranks)
    stats["dtype"] = str(dtype).replace("torch.", "")
    config = generation_config(model, tokenizer, args.max_new_tokens, args.do_sample, args.num_beams,
                               args.temperature, args.top_p, args.top_k)
    torch.manual_seed(args.seed + ranks.rank)
    own_part = part_path(args.output_path, ranks.rank)
    os.makedirs(os.path.dirname(own_part), exist_ok=True)
    truncate_torn_tail(own_part)
    progress = tqdm(total=len(mine), unit="prompt", disable=ranks.rank != 0,
                    desc=f"infer (rank 0 of {ranks.world_size})" if ranks.world_size > 1 else "infer")
    with open(own_part, "a", encoding="utf-8") as part:
        for batch in batches(mine, args.batch_size):
            batch_started = time.time()
            generations = generate_batch(model, tokenizer, config, [token_ids[i] for i in batch], device)
            stats["generate_seconds"] += time.time() - batch_started
            for record_id, generation in zip(batch, generations):
                append_record(part, {
                    "id": record_id,
                    "prompt": texts[record_id],
                    "generated_text": generation.text,
                    "num_generated_tokens": generation.num_generated_tokens,
                    "finish_reason": generation.finish_reason,
                })
                stats["generated_tokens"] += generation.num_generated_tokens
            progress.update(len(batch))
            progress.set_postfix_str(f"{stats['generated_tokens'] / stats['generate_seconds']:.1f} tok/s")
    progress.close()
    stats["peak_gpu_memory_bytes"] = peak_gpu_memory_bytes()
    return stats


def infer_manifest(args, started: float, totals: list, input_records: int, resumed: int) -> dict:
    """run.json: counts and throughput over all ranks (ranks generate in parallel, so time is the slowest's)."""
    tokens = sum(stats["generated_tokens"] for stats in totals)
    seconds = max(stats["generate_seconds"] for stats in totals)
    peaks = [stats["peak_gpu_memory_bytes"] for stats in totals if stats["peak_gpu_memory_bytes"] is not None]
    # A rank with nothing left to generate loads no model; the others all chose alike.
    loaded = next((stats for stats in totals if stats["attention"]), {"attention": None, "dtype": None})
    return build_manifest(
        job="infer", args=asdict(args), env=dict(os.environ), status="completed", exit_code=0,
        metrics={
            "input_records": input_records,
            "resumed_records": resumed,
            "generated_records": sum(stats["generated_records"] for stats in totals),
            "generated_tokens": tokens,
            "tokens_per_second": round(tokens / seconds, 3) if seconds else 0.0,
            "generate_seconds": round(seconds, 3),
        },
        data_files=data_files_info({"input": args.input_path}),
        attention=loaded["attention"], device={**device_info(), "dtype": loaded["dtype"]},
        world_size=len(totals), wall_time_s=time.time() - started,
        peak_gpu_memory_bytes=max(peaks) if peaks else None, global_step=None, resumed_from=None,
        extra={"output_path": args.output_path},
    )
