"""The jobs' TrainingArguments take the seeds' flags on transformers 4 and 5 alike.

Runs where transformers is installed (skipped otherwise).
"""

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from ftimg_jobs.args.training import TrainingArguments  # noqa: E402
from ftimg_jobs.errors import JobError  # noqa: E402


def test_warmup_ratio_warms_up_over_that_share_of_the_steps(tmp_path):
    arguments = TrainingArguments(output_dir=str(tmp_path), warmup_ratio=0.3, report_to="none")
    assert arguments.get_warmup_steps(10) == 3


def test_overwrite_output_dir_is_a_flag_on_every_transformers(tmp_path):
    assert TrainingArguments(output_dir=str(tmp_path), overwrite_output_dir=True, report_to="none").overwrite_output_dir


def test_warmup_ratio_and_steps_together_are_refused_where_they_are_one_setting(tmp_path):
    import dataclasses

    import transformers

    if "warmup_ratio" in {f.name for f in dataclasses.fields(transformers.TrainingArguments)}:
        pytest.skip("transformers 4 keeps both settings (steps win)")
    with pytest.raises(JobError, match="--warmup_ratio or --warmup_steps, not both"):
        TrainingArguments(output_dir=str(tmp_path), warmup_ratio=0.3, warmup_steps=2, report_to="none")
