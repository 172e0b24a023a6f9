"""Python's garbage collector kept off the objects a training run makes once and keeps.

A full collection walks every object Python tracks. In a training process that is about half a
million objects (torch's and transformers' modules, the model, torch.compile's graphs and guards),
and one pass takes about a quarter of a second of host time (benchmarks/gc_pauses.py: a 32-layer LoRA
Llama under the Trainer on a CPU made 8 full collections in 199 steps, 2.1 s in all). While it runs, the
host queues no kernel, so a step that is short on host time waits for it. ``gc.freeze()`` after the
first step moves everything alive then out of the collector's reach: the same run then spent 0.28 s
in 24 full collections. Frozen objects are still freed by reference counting; only cycles among them
wait for the end of training, when they are unfrozen.
"""

import gc
import logging

from transformers import TrainerCallback

log = logging.getLogger("ftimg_jobs")


class FreezeLongLivedObjects(TrainerCallback):
    """After optimizer step ``after_step`` (its compile included): one full collection, then ``gc.freeze()``;
    unfrozen when training ends. ``notes`` gets how many objects were frozen."""

    def __init__(self, notes: dict, after_step: int = 1):
        self.notes = notes
        self.after_step = after_step
        self.frozen = False

    def on_step_end(self, args, state, control, **kwargs):
        if self.frozen or state.global_step < self.after_step:
            return
        gc.collect()
        gc.freeze()
        self.frozen = True
        self.notes.update(applied=True, reason=f"frozen after step {state.global_step}",
                          objects_frozen=gc.get_freeze_count())
        log.info("garbage collector: %d objects frozen after step %d (--freeze_gc)", self.notes["objects_frozen"],
                 state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        if self.frozen:
            gc.unfreeze()
            self.frozen = False


def garbage_collection_callbacks(speed_args, notes: dict) -> list:
    """``notes["gc"]`` says what was done; the callback fills in the count once it has frozen."""
    if not speed_args.freeze_gc:
        notes["gc"] = {"applied": False, "reason": "--freeze_gc False"}
        return []
    notes["gc"] = {"applied": False, "reason": "no optimizer step has ended in this run"}
    return [FreezeLongLivedObjects(notes["gc"])]
