"""merge: fold a LoRA adapter into its base model and save a standalone model (safetensors + tokenizer).

Launch:
  python -m ftimg_jobs merge --adapter_name_or_path out/lora --output_dir out/merged
  python -m ftimg_jobs merge --model_name_or_path BASE --adapter_name_or_path out/lora \\
      --output_dir out/merged --torch_dtype bfloat16
  docker run IMAGE merge --adapter_name_or_path /data/lora --output_dir /data/merged

The base model defaults to the one recorded in the adapter's adapter_config.json.
It is loaded unquantized even for a QLoRA adapter: weights folded into 4-bit
blocks would be re-rounded, so the merged model would no longer match the adapter.
The merge runs on the CPU: it needs one pass over the weights, no GPU memory.
The merged model's logits equal base + adapter (tests/jobs/test_merge.py checks it).
"""

import os
import time

from transformers import AutoModelForCausalLM, AutoTokenizer

from ftimg_jobs.args.checks import dtype_problems, model_problems, raise_problems
from ftimg_jobs.args.generation import MergeArguments
from ftimg_jobs.args.model import AdapterArguments, ModelArguments
from ftimg_jobs.args.parser import parse_job_args
from ftimg_jobs.errors import JobError
from ftimg_jobs.model.adapter import adapter_task_type
from ftimg_jobs.model.load import dtype_kwargs, load_model_with_adapter
from ftimg_jobs.model.precision import torch_dtype
from ftimg_jobs.model.tokenizer import tokenizer_source
from ftimg_jobs.run_manifest import build_manifest, flat_args, write_manifest

ARGUMENT_CLASSES = (ModelArguments, AdapterArguments, MergeArguments)


def main(job: str, argv: list) -> int:
    parsed = parse_job_args(job, argv, ARGUMENT_CLASSES)
    model_args, adapter_args, args = parsed.instances
    adapter = adapter_args.adapter_name_or_path
    if not adapter:
        raise JobError("merge needs --adapter_name_or_path: the LoRA adapter directory to fold into its base model")
    raise_problems(job, model_problems(model_args) + dtype_problems(args.torch_dtype))
    task_type = adapter_task_type(adapter)
    if task_type != "CAUSAL_LM":
        raise JobError(f"{adapter} is a {task_type} adapter; merge folds causal-LM "
                       "adapters (lora-sft/qlora-sft). Load classification adapters with peft instead.")
    started = time.time()
    base = model_args.model_name_or_path
    dtype = "auto" if args.torch_dtype == "auto" else torch_dtype(args.torch_dtype)
    # Eager attention: the merge runs no forward pass, and eager loads for every architecture.
    model = load_model_with_adapter(AutoModelForCausalLM, base, adapter, {"implementation": "eager"},
                                    dict(trust_remote_code=model_args.trust_remote_code, **dtype_kwargs(dtype)))
    merged = model.merge_and_unload()
    # Safetensors is the default format of save_pretrained in every supported transformers.
    merged.save_pretrained(args.output_dir)
    # The tokenizer is copied as saved (training may have added tokens or a chat template), not adjusted.
    AutoTokenizer.from_pretrained(tokenizer_source(base, adapter)).save_pretrained(args.output_dir)
    write_manifest(args.output_dir, build_manifest(
        job="merge", args=flat_args(parsed.instances), env=dict(os.environ), status="completed", exit_code=0,
        metrics={"parameters": sum(parameter.numel() for parameter in merged.parameters())},
        data_files={}, attention=None, device={"device": "cpu", "dtype": str(merged.dtype).replace("torch.", "")},
        world_size=1, wall_time_s=time.time() - started, peak_gpu_memory_bytes=None, global_step=None,
        resumed_from=None, extra={"model": base, "adapter": adapter},
    ))
    print(f"merge: saved {base} + {adapter} to {args.output_dir}", flush=True)
    return 0
