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
from dataclasses import asdict, dataclass, field
from typing import Optional

from transformers import AutoTokenizer

from ftimg_jobs.errors import JobError
from ftimg_jobs.infer_adapter import adapter_base_model, adapter_task_type, has_tokenizer
from ftimg_jobs.infer_runtime import DTYPES, load_model_with_adapter, parse_job_args
from ftimg_jobs.model_setup import dtype_kwargs
from ftimg_jobs.run_manifest import build_manifest, write_manifest


@dataclass
class MergeArguments:
    adapter_name_or_path: Optional[str] = field(default=None, metadata={
        "help": "LoRA adapter directory (as saved by lora-sft/qlora-sft). Required"})
    model_name_or_path: Optional[str] = field(default=None, metadata={
        "help": "Base model directory (default: base_model_name_or_path from adapter_config.json)"})
    output_dir: str = field(default="output/merged", metadata={"help": "Where the merged model is saved"})
    torch_dtype: str = field(default="auto", metadata={
        "help": "auto (the base checkpoint's dtype), bfloat16, float16 or float32"})


def main(job: str, argv: list) -> int:
    args = parse_job_args(MergeArguments, job, argv)
    if not args.adapter_name_or_path:
        raise JobError("merge needs --adapter_name_or_path: the LoRA adapter directory to fold into its base model")
    if args.torch_dtype != "auto" and args.torch_dtype not in DTYPES:
        raise JobError(f"--torch_dtype {args.torch_dtype}: use auto, {', '.join(DTYPES)}")
    task_type = adapter_task_type(args.adapter_name_or_path)
    if task_type != "CAUSAL_LM":
        raise JobError(f"{args.adapter_name_or_path} is a {task_type} adapter; merge folds causal-LM "
                       "adapters (lora-sft/qlora-sft). Load classification adapters with peft instead.")
    started = time.time()
    base = args.model_name_or_path or adapter_base_model(args.adapter_name_or_path)
    # Eager attention: the merge runs no forward pass, and eager loads for every architecture.
    model = load_model_with_adapter(base, args.adapter_name_or_path, {"implementation": "eager"},
                                    dtype_kwargs(DTYPES.get(args.torch_dtype, "auto")))
    merged = model.merge_and_unload()
    # Safetensors is the default format of save_pretrained in every supported transformers.
    merged.save_pretrained(args.output_dir)
    # The tokenizer is copied as saved (training may have added tokens or a chat template), not adjusted.
    tokenizer_dir = args.adapter_name_or_path if has_tokenizer(args.adapter_name_or_path) else base
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(args.output_dir)
    write_manifest(args.output_dir, build_manifest(
        job="merge", args=asdict(args), env=dict(os.environ), status="completed", exit_code=0,
        metrics={"parameters": sum(parameter.numel() for parameter in merged.parameters())},
        data_files={}, attention=None, device={"device": "cpu", "dtype": str(merged.dtype).replace("torch.", "")},
        world_size=1, wall_time_s=time.time() - started, peak_gpu_memory_bytes=None, global_step=None,
        resumed_from=None, extra={"model": base, "adapter": args.adapter_name_or_path},
    ))
    print(f"merge: saved {base} + {args.adapter_name_or_path} to {args.output_dir}", flush=True)
    return 0
