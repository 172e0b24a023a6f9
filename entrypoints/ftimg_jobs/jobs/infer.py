"""infer: batch generation from a JSONL file of prompts to a JSONL file of completions.

Launch:
  python -m ftimg_jobs infer                                   # embedded tiny model + sample prompts
  python -m ftimg_jobs infer --model_name_or_path MODEL --input_path prompts.jsonl \\
      --output_path out/predictions.jsonl --batch_size 16 --max_new_tokens 256
  python -m ftimg_jobs infer --adapter_name_or_path out/lora --input_path prompts.jsonl --output_path out/p.jsonl
  NPROC_PER_NODE=2 python -m ftimg_jobs infer ...              # one process per GPU (default: all GPUs)
  docker run --gpus all IMAGE infer ...                        # the same, inside the image

Input: one JSON object per line with an optional `id` (default: the 0-based line number)
and a prompt in any SFT format (`messages`, `conversations`, `instruction`/`input`, `prompt`),
or fields described by --dataset_spec / --columns / --prompt_template (the prompt side of a spec).
Chat formats go through the tokenizer's chat template; a `prompt` string is continued
verbatim, the way the SFT jobs train prompt/completion records.
Output: one line per input id, in input order: {id, prompt, generated_text,
num_generated_tokens, finish_reason ("eos" | "length")}; run.json next to it (or in --output_dir).

Rerunning the same command after a crash or kill resumes: finished ids are kept,
the rest are generated, and the output ends with every id exactly once
(the bookkeeping is in generate/resume.py) — only with the same input, model, adapter and
generation settings, and one job per output file at a time (run_lock.py). Ranks take disjoint shares of the pending
prompts, longest first, in batches of similar length with left padding.
"""

import os
import sys
import time

import torch
from tqdm import tqdm

from ftimg_jobs.args.checks import generation_problems, model_problems, raise_problems
from ftimg_jobs.args.generation import GenerationArguments
from ftimg_jobs.args.model import AdapterArguments, ModelArguments
from ftimg_jobs.args.parser import parse_job_args
from ftimg_jobs.data.loading import prompt_conversion
from ftimg_jobs.generate.batching import batches, rank_share, sort_longest_first
from ftimg_jobs.generate.decode import generate_batch, generation_config, prompt_token_ids, render_prompt
from ftimg_jobs.generate.input import read_input_records
from ftimg_jobs.generate.model import load_generation_model
from ftimg_jobs.generate.ranks import Ranks
from ftimg_jobs.generate.resume import (
    append_record,
    check_output_settings,
    finished_records,
    output_settings,
    part_path,
    pending_ids,
    record_output_settings,
    truncate_torn_tail,
    write_final_output,
)
from ftimg_jobs.model.device import device_info, peak_gpu_memory_bytes
from ftimg_jobs.model.tokenizer import load_tokenizer, tokenizer_source
from ftimg_jobs.run_lock import acquire, is_global_rank_zero, lock_path_for_file
from ftimg_jobs.run_manifest import build_manifest, data_files_info, flat_args, write_manifest

ARGUMENT_CLASSES = (ModelArguments, AdapterArguments, GenerationArguments)


def main(job: str, argv: list) -> int:
    parsed = parse_job_args(job, argv, ARGUMENT_CLASSES)
    model_args, adapter_args, args = parsed.instances
    raise_problems(job, model_problems(model_args) + generation_problems(args))
    started = time.time()
    lock = claim_output_file(job, parsed)
    records = read_input_records(args.input_path, prompt_conversion(args))
    input_ids = [record.id for record in records]
    tokenizer, _notes = load_tokenizer(tokenizer_source(model_args.model_name_or_path,
                                                        adapter_args.adapter_name_or_path),
                                       model_args.trust_remote_code)
    texts = {record.id: render_prompt(tokenizer, record.prompt) for record in records}
    token_ids = {record.id: prompt_token_ids(tokenizer, record.prompt, texts[record.id]) for record in records}

    ranks = Ranks.from_environment()
    os.makedirs(os.path.dirname(os.path.abspath(args.output_path)), exist_ok=True)
    finished_before = finished_records(args.output_path, input_ids)
    # Every rank must see the same finished set before anyone appends, or the shares would differ.
    ranks.barrier()
    pending = pending_ids(input_ids, finished_before)
    mine = rank_share(sort_longest_first(pending, {i: len(token_ids[i]) for i in pending}), ranks.rank, ranks.world_size)

    stats = generate_share(parsed, ranks, tokenizer, texts, token_ids, mine)
    totals = ranks.gather_stats(stats)
    if ranks.rank == 0:
        written = write_final_output(args.output_path, input_ids)
        write_manifest(args.output_dir or os.path.dirname(os.path.abspath(args.output_path)),
                       infer_manifest(parsed, started, totals, len(input_ids), len(finished_before), lock))
        print(f"infer: wrote {written} records to {args.output_path} "
              f"({len(finished_before)} resumed, {len(input_ids) - len(finished_before)} generated)", flush=True)
    ranks.close()
    return 0


def claim_output_file(job: str, parsed):
    """Hold the output file (global rank 0) and refuse output generated with other settings, before loading."""
    model_args, adapter_args, args = parsed.instances
    lock = None
    if is_global_rank_zero(dict(os.environ)):
        lock = acquire(lock_path_for_file(args.output_path), job, "give this run another --output_path")
        if lock.took_over:
            print(f"infer: took over the stale lock of {lock.took_over.get('run', '?')}: its process is gone",
                  file=sys.stderr, flush=True)
    settings = output_settings(model_args, adapter_args, args)
    check_output_settings(args.output_path, settings)
    if lock is not None:
        record_output_settings(args.output_path, settings)
    return lock


def generate_share(parsed, ranks: Ranks, tokenizer, texts: dict, token_ids: dict, mine: list) -> dict:
    """Generate this rank's ids in length-sorted batches, appending each record to the rank's part file."""
    model_args, adapter_args, args = parsed.instances
    stats = {"generated_records": len(mine), "generated_tokens": 0, "generate_seconds": 0.0,
             "attention": None, "dtype": None, "peak_gpu_memory_bytes": None}
    if not mine:
        return stats  # nothing left for this rank: skip loading the model
    model, device, dtype, stats["attention"] = load_generation_model(model_args, adapter_args, args,
                                                                       ranks.local_rank)
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


def infer_manifest(parsed, started: float, totals: list, input_records: int, resumed: int, lock) -> dict:
    """run.json: counts and throughput over all ranks (ranks generate in parallel, so time is the slowest's)."""
    args = parsed.of(GenerationArguments)
    tokens = sum(stats["generated_tokens"] for stats in totals)
    seconds = max(stats["generate_seconds"] for stats in totals)
    peaks = [stats["peak_gpu_memory_bytes"] for stats in totals if stats["peak_gpu_memory_bytes"] is not None]
    # A rank with nothing left to generate loads no model; the others all chose alike.
    loaded = next((stats for stats in totals if stats["attention"]), {"attention": None, "dtype": None})
    return build_manifest(
        job="infer", args=flat_args(parsed.instances), env=dict(os.environ), status="completed", exit_code=0,
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
        extra={"output_path": args.output_path, "lock": lock.manifest_entry() if lock else None},
    )
