"""Step timing on a GPU (train/throughput.py): a step's end records an event and never synchronises the device.

    PYTHONPATH=entrypoints python -m pytest -m gpu tests/gpu/test_throughput_gpu.py -v
"""

import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from ftimg_jobs.train.batches import CountingCollator  # noqa: E402
from ftimg_jobs.train.throughput import ThroughputCallback  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_steps_are_timed_on_the_device_without_a_synchronisation():
    collator = CountingCollator(lambda features: features)
    collator.token_counts.extend([100, 100, 100])
    callback = ThroughputCallback(collator, gradient_accumulation_steps=1)
    matrix = torch.randn(4096, 4096, device="cuda")
    matrix = (matrix @ matrix).tanh()  # cuBLAS set up before synchronising calls are forbidden
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any synchronising call below raises
    try:
        callback.on_train_begin(None, None, None)
        host_started = time.perf_counter()
        for _ in range(3):
            for _ in range(20):
                matrix = (matrix @ matrix).tanh()
            callback.on_step_end(None, None, None)
        host_seconds = time.perf_counter() - host_started
    finally:
        torch.cuda.set_sync_debug_mode(0)
    steps = callback.steps
    device_seconds = sum(step["seconds"] for step in steps)
    assert [step["tokens"] for step in steps] == [100, 100, 100]
    assert all(step["seconds"] > 0 for step in steps)
    # The host only queued the work; the device's clock saw it run.
    assert device_seconds > host_seconds
