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


def test_the_nan_filter_is_off_unless_asked_for(tmp_path):
    """transformers' filter reads every step's loss back to the host (a device synchronisation)."""
    from ftimg_jobs.args.parser import parse_job_args
    from ftimg_jobs.jobs.sft import ARGUMENT_CLASSES

    def training_args(*flags):
        parsed = parse_job_args("lora-sft", ["--output_dir", str(tmp_path), *flags], ARGUMENT_CLASSES)
        return parsed.of(TrainingArguments)

    assert training_args().logging_nan_inf_filter is False
    assert training_args("--logging_nan_inf_filter", "True").logging_nan_inf_filter is True
