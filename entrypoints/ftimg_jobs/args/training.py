"""The training jobs' TrainingArguments: transformers' own, plus the flags our users pass that transformers 5 dropped.

- `--overwrite_output_dir`: transformers 5 removed it (it had stopped doing anything inside Trainer);
  the jobs still give it a meaning (train/resume.py: remove other runs' checkpoints) and the seeds'
  command lines pass it. On transformers 4, where the field exists, this redeclares it with the same default.
- `--warmup_ratio`: transformers 5 folded it into `--warmup_steps` (a float below 1 is a ratio of the
  total steps); seed command lines pass `--warmup_ratio 0.03`, so on transformers 5 it is declared here
  and handed to `warmup_steps`.
"""

from dataclasses import dataclass, field, fields

import transformers

from ftimg_jobs.errors import JobError

TRANSFORMERS_FIELDS = {f.name for f in fields(transformers.TrainingArguments)}


@dataclass
class TrainingArguments(transformers.TrainingArguments):
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "Remove the checkpoints of other runs in --output_dir before training (this run's own are kept "
                "and resumed)."})


if "warmup_ratio" not in TRANSFORMERS_FIELDS:
    @dataclass
    class TrainingArguments(TrainingArguments):  # noqa: F811 (the same class, one field more on transformers 5)
        warmup_ratio: float = field(default=0.0, metadata={
            "help": "Linear warm-up over this share of the total steps (passed on as --warmup_steps, which "
                    "transformers 5 reads as a ratio when below 1)."})

        def __post_init__(self):
            if self.warmup_ratio:
                if not 0 <= self.warmup_ratio < 1:
                    raise JobError(f"--warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
                if self.warmup_steps:
                    raise JobError("give --warmup_ratio or --warmup_steps, not both")
                self.warmup_steps = self.warmup_ratio
            super().__post_init__()
