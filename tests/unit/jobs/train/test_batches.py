"""How training batches are laid out, and what run.json says about it (train/batches.py)."""

from types import SimpleNamespace

import pytest

pytest.importorskip("torch")

from ftimg_jobs.train.batches import PaddingFreeCollator, choose_collator  # noqa: E402

PADDED = object()  # stands for the job's padding collator


def test_flash4_and_flash2_rows_are_padding_free_and_the_flag_turns_rows_off():
    collator, note = choose_collator(PADDED, SimpleNamespace(padding_free=True),
                                     {"implementation": "flash_attention_4"})
    assert isinstance(collator, PaddingFreeCollator) and note["padding_free"] is True
    assert note["reason"] == "flash_attention_4 attention separates examples by position ids"
    collator, note = choose_collator(PADDED, SimpleNamespace(padding_free=True),
                                     {"implementation": "flash_attention_2"})
    assert isinstance(collator, PaddingFreeCollator) and note["padding_free"] is True
    collator, note = choose_collator(PADDED, SimpleNamespace(padding_free=False),
                                     {"implementation": "flash_attention_4"})
    assert collator is PADDED and note == {"padding_free": False, "reason": "--padding_free False"}
