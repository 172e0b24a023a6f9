"""Step timing (train/throughput.py): real tokens and seconds of every step, read without holding the host back.

The device path is also run on a GPU with synchronisation forbidden (tests/gpu/test_throughput_gpu.py).
"""

import time

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from ftimg_jobs.train import throughput as throughput_module  # noqa: E402
from ftimg_jobs.train.batches import CountingCollator  # noqa: E402
from ftimg_jobs.train.throughput import ThroughputCallback  # noqa: E402


def counted(*token_counts):
    collator = CountingCollator(lambda features: features)
    collator.token_counts.extend(token_counts)
    return collator


def test_host_clock_times_each_step_and_counts_its_real_tokens():
    callback = ThroughputCallback(counted(10, 20, 30, 40), gradient_accumulation_steps=2)
    callback.on_train_begin(None, None, None)
    time.sleep(0.02)
    callback.on_step_end(None, None, None)
    callback.on_step_end(None, None, None)
    steps = callback.steps
    assert [step["tokens"] for step in steps] == [30, 70]
    assert steps[0]["seconds"] >= 0.02 and steps[1]["seconds"] < 0.02
    summary = callback.summary(warmup_steps=1)
    assert summary["steps_measured"] == 1 and summary["tokens_per_second"] == 70 / steps[1]["seconds"]


class DeviceClock:
    """Marks on a device the test moves forward by hand: ``done`` is how far the device has got."""

    def __init__(self):
        self.done, self.recorded, self.waits = 0, 0, 0

    def mark(self):
        clock, index = self, self.recorded
        self.recorded += 1

        class Mark:
            def query(self):
                return index <= clock.done

            def synchronize(self):
                clock.waits += 1
                clock.done = max(clock.done, index)

            def elapsed_time(self, end):
                return 1000.0 * (end.index - index)  # one second between marks, in milliseconds

        mark = Mark()
        mark.index = index
        return mark


def test_a_step_end_never_waits_for_the_device_and_reading_the_steps_does(monkeypatch):
    clock = DeviceClock()
    monkeypatch.setattr(throughput_module, "step_mark", clock.mark)
    callback = ThroughputCallback(counted(5, 6, 7), gradient_accumulation_steps=1)
    callback.on_train_begin(None, None, None)
    callback.on_step_end(None, None, None)
    callback.on_step_end(None, None, None)
    assert clock.waits == 0 and callback.timed == [] and len(callback.pending) == 2
    clock.done = 1  # the device finished step 1 while the host queued step 3
    callback.on_step_end(None, None, None)
    assert clock.waits == 0 and callback.timed == [{"seconds": 1.0, "tokens": 5}]
    assert callback.steps == [{"seconds": 1.0, "tokens": 5}, {"seconds": 1.0, "tokens": 6},
                              {"seconds": 1.0, "tokens": 7}]
    assert clock.waits == 2 and not callback.pending
