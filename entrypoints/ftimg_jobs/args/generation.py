"""What the infer job reads, writes and how it generates; what merge writes."""

from dataclasses import dataclass, field
from typing import Optional

from ftimg_jobs.args.dataset_spec import DatasetSpecArguments
from ftimg_jobs.paths import sample_data


@dataclass
class GenerationArguments(DatasetSpecArguments):
    """Prompts in, completions out, and the decoding settings."""

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


@dataclass
class MergeArguments:
    """Where the merged model goes and in which dtype."""

    output_dir: str = field(default="output/merged", metadata={"help": "Where the merged model is saved"})
    torch_dtype: str = field(default="auto", metadata={
        "help": "auto (the base checkpoint's dtype), bfloat16, float16 or float32"})
