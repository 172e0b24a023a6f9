"""What the infer job reads, writes and how it generates; what merge writes."""

from dataclasses import dataclass, field
from typing import List, Optional

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
    engine: str = field(default="auto", metadata={
        "help": "static: a static KV cache and a CUDA-graph decode step, refilling finished rows (GPU, "
                "transformers 5); eager: model.generate in length-sorted batches; auto: static where it can run",
        "choices": ["auto", "static", "eager"]})
    batch_size: Optional[int] = field(default=None, metadata={
        "help": "Prompts decoded together on each GPU (default: static engine, as many as the KV cache fits in "
                "free GPU memory, at most 256; eager engine, 8). The static engine lowers a larger value to what fits"})
    max_new_tokens: int = field(default=256, metadata={"help": "Most tokens generated per prompt"})
    do_sample: bool = field(default=False, metadata={"help": "Sample instead of greedy/beam search"})
    temperature: Optional[float] = field(default=None, metadata={"help": "Sampling temperature (default: the model's)"})
    top_p: Optional[float] = field(default=None, metadata={"help": "Nucleus sampling mass (default: the model's)"})
    top_k: Optional[int] = field(default=None, metadata={"help": "Top-k sampling (default: the model's)"})
    repetition_penalty: Optional[float] = field(default=None, metadata={
        "help": "Divide the logits of tokens already in the prompt or output by this (>1 discourages "
                "repeats; default: the model's, else 1)"})
    stop: Optional[List[str]] = field(default=None, metadata={
        "help": "Stop strings: a completion ends before the first one it produces (finish_reason stop)"})
    ignore_eos: bool = field(default=False, metadata={
        "help": "Keep generating past the end-of-sequence token, up to --max_new_tokens (benchmarks)"})
    num_beams: int = field(default=1, metadata={"help": "Beam search width (1: greedy or sampling)"})
    seed: int = field(default=42, metadata={"help": "Random seed for sampling (offset by rank)"})
    merge_adapter: bool = field(default=True, metadata={
        "help": "Fold the LoRA adapter into a bf16/fp16 copy of its base before generating (a QLoRA adapter "
                "into the unquantized base); False applies it unmerged, as trained"})
    torch_dtype: str = field(default="auto", metadata={
        "help": "auto (bf16/fp16 on GPU, fp32 on CPU), bfloat16, float16 or float32"})


@dataclass
class MergeArguments:
    """Where the merged model goes and in which dtype."""

    output_dir: str = field(default="output/merged", metadata={"help": "Where the merged model is saved"})
    torch_dtype: str = field(default="auto", metadata={
        "help": "auto (the base checkpoint's dtype), bfloat16, float16 or float32"})
