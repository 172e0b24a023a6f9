"""The training jobs' TrainingArguments: transformers' own, plus the flags our users pass that transformers 5 dropped.

transformers 5 removed `--overwrite_output_dir` (it had stopped doing anything inside Trainer);
the jobs still give it a meaning (train/resume.py: remove other runs' checkpoints) and the
seeds' command lines pass it, so it is declared here. On transformers 4, where the field
exists, this redeclares it with the same default.
"""

from dataclasses import dataclass, field

import transformers


@dataclass
class TrainingArguments(transformers.TrainingArguments):
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "Remove the checkpoints of other runs in --output_dir before training (this run's own are kept "
                "and resumed)."})
