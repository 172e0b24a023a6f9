"""How training batches are laid out, and what run.json says about it (train/batches.py)."""

from types import SimpleNamespace

import pytest

pytest.importorskip("torch")

from ftimg_jobs.train.batches import PaddingFreeCollator, choose_collator  # noqa: E402

PADDED = object()  # stands for the job's padding collator


def test_flash4_rows_say_where_the_varlen_kernel_stops():
    collator, note = choose_collator(PADDED, SimpleNamespace(padding_free=True),
                                     {"implementation": "flash_attention_4"})
    assert isinstance(collator, PaddingFreeCollator) and note["padding_free"] is True
    assert "rows over 4096 tokens: one SDPA call per example" in note["reason"]


def test_flash2_rows_need_no_such_note_and_the_flag_turns_rows_off():
    _, note = choose_collator(PADDED, SimpleNamespace(padding_free=True), {"implementation": "flash_attention_2"})
    assert note["padding_free"] is True and "4096" not in note["reason"]
    collator, note = choose_collator(PADDED, SimpleNamespace(padding_free=False),
                                     {"implementation": "flash_attention_4"})
    assert collator is PADDED and note == {"padding_free": False, "reason": "--padding_free False"}
