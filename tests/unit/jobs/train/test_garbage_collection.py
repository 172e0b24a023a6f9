"""--freeze_gc (train/garbage_collection.py): what exists after the first step leaves the collector's reach,
new garbage is still collected, and training's end gives everything back."""

import gc
import weakref
from types import SimpleNamespace

import pytest

pytest.importorskip("transformers")

from transformers import TrainerState  # noqa: E402

from ftimg_jobs.train.garbage_collection import FreezeLongLivedObjects, garbage_collection_callbacks  # noqa: E402


class Node:
    pass


def cycle():
    """Two objects that only a collection frees; a weak reference tells whether it did."""
    first, second = Node(), Node()
    first.other, second.other = second, first
    return weakref.ref(first)


@pytest.fixture(autouse=True)
def unfrozen():
    yield
    gc.unfreeze()


def test_freezes_after_the_first_step_collects_new_cycles_and_unfreezes_at_the_end():
    notes = {}
    callback = FreezeLongLivedObjects(notes)
    callback.on_step_end(None, TrainerState(global_step=0), None)
    assert gc.get_freeze_count() == 0 and notes == {}

    kept = Node()
    kept.self = kept  # a cycle alive at the freeze: frozen, so not collected while training
    kept_ref = weakref.ref(kept)
    callback.on_step_end(None, TrainerState(global_step=1), None)
    assert gc.get_freeze_count() > 0 and notes["applied"] is True
    assert notes["objects_frozen"] > 0

    made_after = cycle()
    del kept
    gc.collect()
    assert made_after() is None, "garbage made after the freeze is collected as before"
    assert kept_ref() is not None, "a frozen cycle waits for the end of training"

    callback.on_step_end(None, TrainerState(global_step=2), None)  # once only
    callback.on_train_end(None, TrainerState(global_step=2), None)
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert kept_ref() is None


def test_the_flag_turns_it_off_and_says_so():
    notes = {}
    assert garbage_collection_callbacks(SimpleNamespace(freeze_gc=False), notes) == []
    assert notes["gc"] == {"applied": False, "reason": "--freeze_gc False"}
    callbacks = garbage_collection_callbacks(SimpleNamespace(freeze_gc=True), notes)
    assert [type(callback) for callback in callbacks] == [FreezeLongLivedObjects]
    assert notes["gc"]["applied"] is False  # until the first step has run
