"""A benchmark run's own records (skipped without torch and transformers)."""

import gc

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import TrainerState  # noqa: E402

from speed_cases import CollectorPauses  # noqa: E402


def test_collections_are_counted_only_over_the_measured_steps():
    pauses = CollectorPauses(first_step=3, last_step=5)
    gc.collect(2)  # before the window: not counted
    pauses.on_step_end(None, TrainerState(global_step=3), None)
    gc.collect(2)
    gc.collect(0)
    pauses.on_step_end(None, TrainerState(global_step=5), None)
    gc.collect(2)  # after the window: not counted
    result = pauses.result()
    assert result["generation_2"]["collections"] == 1 and result["generation_2"]["ms"] > 0
    assert result["generation_0"]["collections"] >= 1
    assert pauses.record not in gc.callbacks
