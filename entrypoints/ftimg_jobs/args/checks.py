"""The one place that checks combinations of settings: every problem is collected and reported at once.

Checks are grouped by concern and are pure: what they need to know about the
machine (a CUDA GPU, bitsandbytes) comes in as ``Machine``, so each rule is
unit-tested without a GPU.
"""

import importlib.util
import os
from dataclasses import dataclass

from ftimg_jobs.errors import JobError
from ftimg_jobs.model.precision import AUTO, DTYPE_NAMES
from ftimg_jobs.paths import default_model_path


@dataclass(frozen=True)
class Machine:
    cuda: bool
    bitsandbytes: bool

    @classmethod
    def here(cls) -> "Machine":
        import torch

        return cls(cuda=torch.cuda.is_available(), bitsandbytes=importlib.util.find_spec("bitsandbytes") is not None)


def model_problems(model_args) -> list:
    path = model_args.model_name_or_path
    if os.path.isdir(path):
        return []
    if path == default_model_path():
        return [f"no --model_name_or_path given and the default tiny model is missing at {path}; create it with "
                f"'python -m ftimg_jobs.model.tiny_model {path}' or set FTIMG_DEFAULT_MODEL"]
    return [f"--model_name_or_path {path}: no such directory (models are read from disk, never downloaded); "
            "pass a mounted model folder"]


def adaptation_problems(job: str, lora_args, training_args, machine: Machine) -> list:
    problems = []
    # qlora-* jobs set --q_lora True themselves; their CPU counterpart is the lora-* job.
    without_4bit = f"use {job.replace('qlora', 'lora')}" if job.startswith("qlora") else "drop --q_lora True"
    if lora_args.q_lora and not lora_args.use_lora:
        problems.append("--q_lora True needs LoRA adapters: use the qlora-* job or --use_lora True")
    if lora_args.q_lora and not machine.bitsandbytes:
        problems.append("--q_lora True asks for 4-bit weights, which need the bitsandbytes package and it is not "
                        f"installed; use an ftimg image (it ships bitsandbytes) or {without_4bit}")
    elif lora_args.q_lora and not machine.cuda:
        problems.append("--q_lora True asks for 4-bit weights, which need a CUDA GPU and none is visible; "
                        f"{without_4bit} on CPU, or give the container GPUs (ftimg run --gpus all)")
    if lora_args.q_lora and "zero3" in os.path.basename(str(training_args.deepspeed or "")):
        problems.append("--q_lora True cannot be combined with ZeRO-3 (4-bit weights cannot be sharded): "
                        "use --deepspeed zero2")
    if lora_args.use_lora and lora_args.lora_r < 1:
        problems.append(f"--lora_r must be at least 1, got {lora_args.lora_r}")
    if not 0 <= lora_args.lora_dropout < 1:
        problems.append(f"--lora_dropout must be in [0, 1), got {lora_args.lora_dropout}")
    return problems


def data_problems(data_args) -> list:
    problems = []
    for flag in ("data_path", "eval_data_path", "dataset_spec"):
        path = getattr(data_args, flag, None)
        if path and not os.path.exists(path):
            problems.append(f"--{flag} {path}: no such file")
    if not 0 <= data_args.val_set_size < 1:
        problems.append(f"--val_set_size {data_args.val_set_size} must be in [0, 1) "
                        "(the fraction held out for evaluation)")
    if data_args.max_num_samples < 0:
        problems.append(f"--max_num_samples must be 0 (every record) or more, got {data_args.max_num_samples}")
    if data_args.model_max_length < 1:
        problems.append(f"--model_max_length must be at least 1, got {data_args.model_max_length}")
    return problems


def dtype_problems(torch_dtype: str) -> list:
    if torch_dtype == AUTO or torch_dtype in DTYPE_NAMES:
        return []
    return [f"--torch_dtype {torch_dtype}: use {AUTO}, {', '.join(DTYPE_NAMES)}"]


def generation_problems(generation_args) -> list:
    problems = []
    if generation_args.batch_size is not None and generation_args.batch_size < 1:
        problems.append(f"--batch_size must be at least 1, got {generation_args.batch_size}")
    if generation_args.temperature is not None and generation_args.temperature <= 0:
        problems.append(f"--temperature must be above 0, got {generation_args.temperature}; "
                        "for greedy decoding leave out --do_sample")
    if generation_args.top_p is not None and not 0 < generation_args.top_p <= 1:
        problems.append(f"--top_p must be in (0, 1], got {generation_args.top_p}")
    if generation_args.top_k is not None and generation_args.top_k < 0:
        problems.append(f"--top_k must be 0 (off) or more, got {generation_args.top_k}")
    if generation_args.repetition_penalty is not None and generation_args.repetition_penalty <= 0:
        problems.append(f"--repetition_penalty must be above 0 (1 is off), got {generation_args.repetition_penalty}")
    if any(not stop for stop in generation_args.stop or []):
        problems.append("--stop strings must not be empty")
    if generation_args.engine == "static" and generation_args.num_beams > 1:
        problems.append("--engine static decodes greedily or by sampling; beam search (--num_beams > 1) "
                        "needs --engine eager (or auto)")
    if generation_args.max_new_tokens < 1:
        problems.append(f"--max_new_tokens must be at least 1, got {generation_args.max_new_tokens}")
    if generation_args.num_beams < 1:
        problems.append(f"--num_beams must be at least 1, got {generation_args.num_beams}")
    if generation_args.num_beams > 1 and generation_args.do_sample:
        problems.append("give either --do_sample or --num_beams > 1, not both")
    if not os.path.isfile(generation_args.input_path):
        problems.append(f"--input_path {generation_args.input_path}: no such file")
    return problems + dtype_problems(generation_args.torch_dtype)


def raise_problems(job: str, problems: list) -> None:
    """One error listing every problem, each with its fix."""
    if len(problems) == 1:
        raise JobError(f"{job}: {problems[0]}")
    if problems:
        raise JobError(f"{job}: invalid settings:\n  - " + "\n  - ".join(problems))
