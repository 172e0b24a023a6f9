"""The training benchmark's ftimg side takes the jobs' own collator (skipped without torch, transformers and peft)."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from ftimg_jobs.data.collate import RightPadCausalCollator  # noqa: E402
from speed_ftimg import ftimg_cls_trainer  # noqa: E402
from speed_model import make_model  # noqa: E402
from speed_plan import SHAPES_TINY, pairs  # noqa: E402


def test_cls_side_pads_as_the_cls_job_does(tmp_path):
    """The tiny Llama is a causal decoder: the cls job pads its rows on the right with no mask."""
    make_model(tmp_path / "model", tiny=True)
    cls_pair = next(pair for pair in pairs(SHAPES_TINY) if pair.name == "cls")
    case = dict(cls_pair.ftimg, model_dir=str(tmp_path / "model"), total_steps=1)
    examples = [{"input_ids": [5, 6, 7], "labels": 0}, {"input_ids": [8, 9], "labels": 1}]
    trainer, _, notes = ftimg_cls_trainer(case, tmp_path / "run", examples)
    assert isinstance(trainer.data_collator.collator, RightPadCausalCollator)
    assert notes["batches"]["attention_mask"] is False
    assert "attention_mask" not in trainer.data_collator(examples)
