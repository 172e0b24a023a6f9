"""A logged step's loss on a GPU (train/deferred_logs.py): queued behind the step's work, copied without a
synchronisation, and on the host, exact, once its event has passed.

    PYTHONPATH=entrypoints python -m pytest -m gpu tests/gpu/test_deferred_logs_gpu.py -v
"""

import pytest

torch = pytest.importorskip("torch")

from ftimg_jobs.train.deferred_logs import start_copy  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_the_copy_waits_for_nothing_and_arrives_after_the_work_before_it():
    matrix = torch.randn(8192, 8192, device="cuda")
    loss_sum = torch.zeros((), device="cuda")
    # A trainer's first log takes the host allocator's first pinned block, and cudaHostAlloc waits for the
    # device; the logs after it reuse cached blocks, which is what this test times.
    torch.empty(2, dtype=torch.float32, pin_memory=True)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any synchronising call below raises
    try:
        for _ in range(40):  # about a second of GPU work queued ahead of the copy
            matrix = torch.tanh(matrix @ matrix)
        loss_sum += matrix[0, 0] * 0 + 12.5
        grad_norm = matrix.norm() * 0 + 3.0
        record = start_copy(loss_sum, grad_norm, step=7, epoch=0.5, tokens_seen=None, steps_covered=5,
                            learning_rate=1e-4)
        assert not record.ready()  # the GPU is still on the matrix products
    finally:
        torch.cuda.set_sync_debug_mode(0)
    loss_sum -= loss_sum  # the trainer restarts its sum right after: the copy must not see it
    record.wait()
    assert record.ready()
    assert record.logs() == {"loss": 2.5, "grad_norm": 3.0, "learning_rate": 1e-4}
    assert record.loss_sum == 12.5
