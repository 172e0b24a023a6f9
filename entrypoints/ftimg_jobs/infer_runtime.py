"""Flag parsing, rank coordination and model loading for the `infer` and `merge` jobs.

Model loading reuses the training jobs' helpers (model_setup: tokenizer with pad
token and chat template, dtype keyword of either transformers major, attention
choice with its SDPA -> eager fallback), so a model loads the same way it trained.
"""

import os
import sys
from dataclasses import dataclass, fields, replace
from datetime import timedelta

import torch
import torch.distributed as dist
from peft import PeftModel
from transformers import AutoModelForCausalLM, HfArgumentParser

from ftimg_jobs.catalogue import find_job, load_catalogue
from ftimg_jobs.config_args import assemble_argv
from ftimg_jobs.errors import JobError
from ftimg_jobs.infer_adapter import has_tokenizer
from ftimg_jobs.model_setup import dtype_kwargs, from_pretrained_with_attention, load_tokenizer, select_attention
from ftimg_jobs.paths import DEEPSPEED_DIR

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}

# Ranks only wait for each other (before the first append and after the last record),
# so a wait can last as long as the slowest rank's share; gloo's 30-minute default would cut it.
RANK_WAIT_TIMEOUT = timedelta(days=7)


def parse_job_args(arguments_class, job: str, argv: list):
    """Catalogue defaults < optional YAML config < CLI flags -> one `arguments_class` instance."""
    parser = HfArgumentParser((arguments_class,))
    if any(token in ("-h", "--help") for token in argv):
        parser.prog = f"python -m ftimg_jobs {job}"
        parser.print_help()
        sys.exit(0)
    known = {field.name for field in fields(arguments_class)}
    tokens = assemble_argv(find_job(load_catalogue(), job).defaults, list(argv), known, DEEPSPEED_DIR)
    args, remaining = parser.parse_args_into_dataclasses(args=tokens, return_remaining_strings=True)
    if remaining:
        raise JobError(f"unexpected argument(s): {' '.join(remaining)}. Flags take the form --name value; "
                       "a YAML config file may only come first")
    return args


@dataclass
class Ranks:
    """This process's place among the torchrun workers; a world of one needs no process group.

    Uses gloo even on GPUs: ranks exchange only a few small Python objects, and gloo
    neither pins a device nor has NCCL's watchdog abort a long wait.
    """

    rank: int
    local_rank: int
    world_size: int

    @classmethod
    def from_environment(cls) -> "Ranks":
        ranks = cls(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                    int(os.environ.get("WORLD_SIZE", 1)))
        if ranks.world_size > 1 and not dist.is_initialized():
            dist.init_process_group("gloo", timeout=RANK_WAIT_TIMEOUT)
        return ranks

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def gather_stats(self, stats: dict) -> list:
        """Every rank's `stats`, on every rank; also a barrier."""
        if self.world_size == 1:
            return [stats]
        gathered = [None] * self.world_size
        dist.all_gather_object(gathered, stats)
        return gathered

    def close(self) -> None:
        if self.world_size > 1:
            dist.destroy_process_group()


def tokenizer_for(args, adapter_path):
    """The adapter's tokenizer when training saved one (it may add tokens or a template), else the model's."""
    source = adapter_path if adapter_path and has_tokenizer(adapter_path) else args.model_name_or_path
    tokenizer, _notes = load_tokenizer(replace(args, model_name_or_path=source))
    return tokenizer


def pick_dtype(requested: str, cuda: bool):
    """auto: bf16 on GPUs that have it, else fp16; fp32 on the CPU, where half precision is slow."""
    if requested == "auto":
        if not cuda:
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if requested not in DTYPES:
        raise JobError(f"--torch_dtype {requested}: use auto, {', '.join(DTYPES)}")
    return DTYPES[requested]


def check_model_dir(path: str) -> None:
    if not os.path.isdir(path):
        raise JobError(f"model {path}: no such directory (models are read from disk, never downloaded); "
                       "pass --model_name_or_path with a mounted model folder")


def load_model_with_adapter(path: str, adapter_path, attention: dict, kwargs: dict):
    """The causal LM at `path` with the LoRA adapter applied (not merged) when one is given."""
    check_model_dir(path)
    model = from_pretrained_with_attention(AutoModelForCausalLM, path, attention, kwargs)
    return PeftModel.from_pretrained(model, adapter_path) if adapter_path else model


def load_generation_model(args, ranks: Ranks):
    """Model (+ adapter) on this rank's GPU, or the CPU without one; returns (model, device, dtype, attention)."""
    cuda = torch.cuda.is_available()
    # More processes than GPUs (NPROC_PER_NODE) share the GPUs round-robin.
    device = torch.device("cuda", ranks.local_rank % torch.cuda.device_count()) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dtype = pick_dtype(args.torch_dtype, cuda)
    attention = select_attention(args, dtype)
    kwargs = dict(trust_remote_code=args.trust_remote_code, **dtype_kwargs(dtype))
    model = load_model_with_adapter(args.model_name_or_path, args.adapter_name_or_path, attention, kwargs)
    model.to(device).eval()
    return model, device, dtype, attention
