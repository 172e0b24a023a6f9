"""Training data and how it becomes token sequences, for the sft and cls jobs."""

from dataclasses import dataclass, field
from typing import Optional

from ftimg_jobs.args.dataset_spec import DatasetSpecArguments
from ftimg_jobs.paths import sample_data


@dataclass
class SftDataArguments(DatasetSpecArguments):
    """Training data and how it becomes token sequences."""

    data_path: str = field(default_factory=lambda: sample_data("sft/alpaca_zh_en.json"), metadata={
        "help": "Data file or folder (JSON, JSONL, CSV, Parquet, save_to_disk): alpaca, sharegpt, messages, "
                "prompt/completion or raw text records."})
    eval_data_path: Optional[str] = field(default=None, metadata={"help": "Optional evaluation file (same formats)."})
    val_set_size: float = field(default=0.0, metadata={
        "help": "Fraction of data_path held out for evaluation when no eval_data_path is given."})
    max_num_samples: int = field(default=0, metadata={
        "help": "Train on the first N records of data_path only (0: all of them)."})
    model_max_length: int = field(default=1024, metadata={"help": "Truncate sequences to this many tokens."})
    train_on_prompt: bool = field(default=False, metadata={"help": "Also train on prompt tokens (no -100 mask)."})
    packing: bool = field(default=False, metadata={
        "help": "Concatenate examples into model_max_length blocks (no padding)."})


@dataclass
class ClsDataArguments(DatasetSpecArguments):
    """Text/label data and how labels are interpreted."""

    data_path: str = field(default_factory=lambda: sample_data("cls/sentiment_zh_en.jsonl"), metadata={
        "help": "JSON or JSONL file of {text, label} records."})
    eval_data_path: Optional[str] = field(default=None, metadata={"help": "Optional evaluation file."})
    val_set_size: float = field(default=0.1, metadata={
        "help": "Fraction of data_path held out for evaluation when no eval_data_path is given (0 = none)."})
    max_num_samples: int = field(default=0, metadata={
        "help": "Train on the first N records of data_path only (0: all of them)."})
    model_max_length: int = field(default=512, metadata={"help": "Truncate texts to this many tokens."})
    task_type: str = field(default="auto", metadata={
        "help": "auto (float labels → regression, else classes), classification or regression.",
        "choices": ["auto", "classification", "regression"]})
