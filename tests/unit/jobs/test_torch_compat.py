"""The torch shims may be applied more than once in a process (every job-argument parse applies them)."""

import io

import pytest

torch = pytest.importorskip("torch")

from ftimg_jobs import torch_compat  # noqa: E402


def test_applying_the_shims_twice_registers_the_cpu_loader_once():
    torch_compat.apply_torch_shims()
    torch_compat.apply_torch_shims()
    ours = [entry for entry in torch.serialization._package_registry
            if entry[2] is torch_compat._restore_on_indexed_cpu]
    assert len(ours) == 1


def test_a_tensor_saved_on_the_cpu_loads_onto_an_indexed_cpu_device():
    torch_compat.apply_torch_shims()
    buffer = io.BytesIO()
    torch.save(torch.arange(3), buffer)
    buffer.seek(0)
    assert torch.load(buffer, map_location="cpu:1").tolist() == [0, 1, 2]
