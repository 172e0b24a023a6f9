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
num_generated_tokens, finish_reason ("eos" | "stop" | "length")}; run.json next to it (or in --output_dir).

Engines (--engine): `static` (the default on a GPU with transformers 5) keeps a static KV
cache and replays each decode step as a CUDA graph, refilling rows as they finish
(generate/static_engine.py), with as many rows as free GPU memory holds; `eager` runs
model.generate on length-sorted batches of --batch_size (default 8), on CPUs, older
stacks and for beam search. A LoRA adapter is merged into its base first (--merge_adapter).

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
from ftimg_jobs.errors import JobError
from ftimg_jobs.generate.batching import batches, rank_share, sort_longest_first
from ftimg_jobs.generate.decode import (
    eos_token_ids,
    generate_batch,
    generation_config,
    prompt_token_ids,
    render_prompt,
    sampling_settings,
    text_decoder,
    to_generation,
)
from ftimg_jobs.generate.input import read_input_records
from ftimg_jobs.generate.model import load_generation_model
from ftimg_jobs.generate.ranks import Ranks
from ftimg_jobs.generate.engine_choice import static_engine_problem
from ftimg_jobs.generate.stops import Ending
from ftimg_jobs.generate.resume import (
    append_records,
    check_output_settings,
    finished_records,
    output_settings,
    part_path,
    pending_ids,
    prompts_sha256,
    record_output_settings,
    truncate_torn_tail,
    write_final_output,
)
from ftimg_jobs.model.device import device_info, peak_gpu_memory_bytes
from ftimg_jobs.model.flash4_kernel_cache import enable_flash4_kernel_cache
from ftimg_jobs.model.tokenizer import load_tokenizer, tokenizer_source
from ftimg_jobs.run_lock import acquire, is_global_rank_zero, lock_path_for_file
from ftimg_jobs.run_manifest import build_manifest, data_files_info, flat_args, write_manifest

ARGUMENT_CLASSES = (ModelArguments, AdapterArguments, GenerationArguments)
# The eager engine's default batch (model.generate on CPU or where the static engine cannot run).
EAGER_BATCH_SIZE = 8


def main(job: str, argv: list) -> int:
    kernel_cache = enable_flash4_kernel_cache()  # before the attention probe imports flash-attn-4
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
    claim_output_settings(parsed, input_ids, texts, lock)
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
                       infer_manifest(parsed, started, totals, len(input_ids), len(finished_before), lock,
                                      kernel_cache))
        print(f"infer: wrote {written} records to {args.output_path} "
              f"({len(finished_before)} resumed, {len(input_ids) - len(finished_before)} generated)", flush=True)
    ranks.close()
    return 0


def claim_output_file(job: str, parsed):
    """Hold the output file (global rank 0) before anything is read or loaded."""
    args = parsed.of(GenerationArguments)
    lock = None
    if is_global_rank_zero(dict(os.environ)):
        lock = acquire(lock_path_for_file(args.output_path), job, "give this run another --output_path")
        if lock.took_over:
            print(f"infer: took over the stale lock of {lock.took_over.get('run', '?')}: its process is gone",
                  file=sys.stderr, flush=True)
    return lock


def claim_output_settings(parsed, input_ids: list, texts: dict, lock) -> None:
    """Refuse output generated with other settings or other prompt renderings, before the model is loaded."""
    model_args, adapter_args, args = parsed.instances
    settings = output_settings(model_args, adapter_args, args, prompts_sha256(input_ids, texts))
    check_output_settings(args.output_path, settings)
    if lock is not None:
        record_output_settings(args.output_path, settings)


def generate_share(parsed, ranks: Ranks, tokenizer, texts: dict, token_ids: dict, mine: list) -> dict:
    """Generate this rank's ids, appending each finished record to the rank's part file."""
    model_args, adapter_args, args = parsed.instances
    stats = {"generated_records": len(mine), "generated_tokens": 0, "generate_seconds": 0.0,
             "attention": None, "dtype": None, "peak_gpu_memory_bytes": None, "engine": None, "adapter": None}
    if not mine:
        return stats  # nothing left for this rank: skip loading the model
    model, device, dtype, stats["attention"], stats["adapter"] = load_generation_model(model_args, adapter_args, args,
                                                                                         ranks.local_rank)
    stats["dtype"] = str(dtype).replace("torch.", "")
    config = generation_config(model, tokenizer, args)
    engine, reason = choose_engine(args, model, device)
    stats["engine"] = {"name": engine, "reason": reason}
    torch.manual_seed(args.seed + ranks.rank)
    own_part = part_path(args.output_path, ranks.rank)
    os.makedirs(os.path.dirname(own_part), exist_ok=True)
    truncate_torn_tail(own_part)
    progress = tqdm(total=len(mine), unit="prompt", disable=ranks.rank != 0,
                    desc=f"infer (rank 0 of {ranks.world_size})" if ranks.world_size > 1 else "infer")
    with open(own_part, "a", encoding="utf-8") as part:
        def save(pairs) -> None:
            """Append (record id, Generation) pairs that finished together; count them."""
            append_records(part, [{"id": record_id, "prompt": texts[record_id], "generated_text": generation.text,
                                   "num_generated_tokens": generation.num_generated_tokens,
                                   "finish_reason": generation.finish_reason} for record_id, generation in pairs])
            stats["generated_tokens"] += sum(generation.num_generated_tokens for _, generation in pairs)
            progress.update(len(pairs))
            progress.set_postfix_str(f"{stats['generated_tokens'] / (time.time() - started):.1f} tok/s")

        started = time.time()
        if engine == "static":
            stats["engine"].update(generate_static(args, model, device, tokenizer, config, token_ids, mine, save))
        else:
            for batch in batches(mine, args.batch_size or EAGER_BATCH_SIZE):
                generations = generate_batch(model, tokenizer, config, [token_ids[i] for i in batch], device,
                                             args.stop or (), args.ignore_eos)
                save(list(zip(batch, generations)))
        stats["generate_seconds"] = time.time() - started
    progress.close()
    stats["peak_gpu_memory_bytes"] = peak_gpu_memory_bytes()
    return stats


def choose_engine(args, model, device) -> tuple:
    """("static" | "eager", why); --engine static where it cannot run is an error that says why."""
    if args.engine == "eager":
        return "eager", "--engine eager"
    problem = static_engine_problem(model, device, args.num_beams)
    if problem is None:
        return "static", "CUDA graphs over a static KV cache"
    if args.engine == "static":
        raise JobError(f"infer: --engine static cannot run here: {problem}. Use --engine eager (or auto)")
    return "eager", f"the static engine cannot run here: {problem}"


def generate_static(args, model, device, tokenizer, config, token_ids: dict, mine: list, save) -> dict:
    """Decode `mine` with the static engine, saving records as they finish; returns its timings for run.json."""
    from ftimg_jobs.generate.static_engine import EngineSettings, StaticEngine  # needs transformers 5

    decode = text_decoder(tokenizer)
    settings = EngineSettings(
        max_new_tokens=args.max_new_tokens, sampling=sampling_settings(config),
        eos_token_ids=frozenset() if args.ignore_eos else frozenset(eos_token_ids(config)),
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        stop_strings=tuple(args.stop or ()), decode=decode, max_slots=args.batch_size)

    def finished(records) -> None:
        save([(record.record_id, to_generation(decode, record.token_ids,
                                               Ending(len(record.token_ids), record.reason, record.text_end)))
              for record in records])

    engine = StaticEngine(model, settings, device)
    stats = engine.generate({i: token_ids[i] for i in mine}, finished)
    return {"decode_attention": engine.decode_attention,
            "warmup_seconds": round(stats.capture_seconds, 3), "prefill_seconds": round(stats.prefill_seconds, 3),
            "decode_seconds": round(stats.decode_seconds, 3), "decode_steps": stats.decode_steps,
            "graphs": stats.graphs, "segments": stats.segments}


def infer_manifest(parsed, started: float, totals: list, input_records: int, resumed: int, lock,
                   kernel_cache: str) -> dict:
    """run.json: counts and throughput over all ranks (ranks generate in parallel, so time is the slowest's)."""
    args = parsed.of(GenerationArguments)
    tokens = sum(stats["generated_tokens"] for stats in totals)
    seconds = max(stats["generate_seconds"] for stats in totals)
    peaks = [stats["peak_gpu_memory_bytes"] for stats in totals if stats["peak_gpu_memory_bytes"] is not None]
    # A rank with nothing left to generate loads no model; the others all chose alike.
    loaded = next((stats for stats in totals if stats["attention"]),
                  {"attention": None, "dtype": None, "engine": None, "adapter": None})
    return build_manifest(
        job="infer", args=flat_args(parsed.instances), env=dict(os.environ), status="completed", exit_code=0,
        metrics={
            "input_records": input_records,
            "resumed_records": resumed,
            "generated_records": sum(stats["generated_records"] for stats in totals),
            "generated_tokens": tokens,
            "tokens_per_second": round(tokens / seconds, 3) if seconds else 0.0,
            "generate_seconds": round(seconds, 3),
            "warmup_seconds": max((stats["engine"] or {}).get("warmup_seconds", 0.0) for stats in totals),
        },
        data_files=data_files_info({"input": args.input_path}),
        attention=loaded["attention"], device={**device_info(), "dtype": loaded["dtype"]},
        world_size=len(totals), wall_time_s=time.time() - started,
        peak_gpu_memory_bytes=max(peaks) if peaks else None, global_step=None, resumed_from=None,
        extra={"output_path": args.output_path, "lock": lock.manifest_entry() if lock else None,
               "engine": loaded["engine"], "adapter": loaded["adapter"],
               "engines_by_rank": [stats["engine"] for stats in totals], "flash4_kernel_cache": kernel_cache},
    )
