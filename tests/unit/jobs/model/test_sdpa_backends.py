"""SDPA backend order for training: cuDNN first on datacenter Hopper/Blackwell with plain SDPA over fixed-length rows.

The decision is pure and torch-free. The tests that set the order need a torch whose
sdpa_kernel takes set_priority (2.11 here; skipped on the image's 2.1.2 and without torch).
"""

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from ftimg_jobs.model import sdpa_backends
from ftimg_jobs.model.sdpa_backends import CUDNN_FIRST, SdpaMachine, choose_sdpa_priority

H200_TORCH_2_11 = SdpaMachine(torch_version="2.11.0", priority_api=True, cuda=True, capability=(9, 0),
                              cudnn_version=91900, deprioritized=False)
PACKED = "sdpa, one causal call per example (packed_attention.py)"


def test_cudnn_first_on_hopper_with_plain_sdpa():
    note = choose_sdpa_priority("sdpa", H200_TORCH_2_11)
    assert note["cudnn_first"] is True and "Hopper" in note["reason"]


@pytest.mark.parametrize("capability, name", [((10, 0), "Blackwell"), ((10, 3), "Blackwell Ultra")])
def test_cudnn_first_on_datacenter_blackwell(capability, name):
    note = choose_sdpa_priority("sdpa", replace(H200_TORCH_2_11, capability=capability))
    assert note["cudnn_first"] is True and note["reason"].startswith(name + " GPU")


@pytest.mark.parametrize("implementation", [PACKED, "flash_attention_2", "eager"])
def test_packed_rows_and_other_attention_keep_torchs_order(implementation):
    note = choose_sdpa_priority(implementation, H200_TORCH_2_11)
    assert note["cudnn_first"] is False and repr(implementation) in note["reason"]


@pytest.mark.parametrize("change, reason", [
    ({"cuda": False, "capability": None}, "no CUDA GPU"),
    ({"capability": (8, 0)}, "compute capability 8.0 is not one"),
    ({"capability": (8, 9)}, "compute capability 8.9 is not one"),
    ({"capability": (12, 0)}, "compute capability 12.0 is not one"),
    ({"torch_version": "2.1.2", "priority_api": False}, "torch 2.1.2 cannot order SDPA backends"),
    ({"cudnn_version": 91500}, "cuDNN 9.15.0: cuDNN attention needs 9.15.1+"),
    ({"cudnn_version": 91002}, "cuDNN 9.10.2"),
    ({"cudnn_version": None}, "no cuDNN"),
    ({"deprioritized": True}, "TORCH_CUDNN_SDPA_DEPRIORITIZED=1"),
])
def test_each_missing_condition_keeps_torchs_order_and_says_why(change, reason):
    note = choose_sdpa_priority("sdpa", replace(H200_TORCH_2_11, **change))
    assert note["cudnn_first"] is False
    assert reason in note["reason"] and "PyTorch's own backend order" in note["reason"]


@pytest.fixture
def torch_with_priority():
    torch = pytest.importorskip("torch")
    if not sdpa_backends.probe_machine().priority_api:
        pytest.skip(f"torch {torch.__version__} cannot order SDPA backends")
    yield torch
    sdpa_backends.release_sdpa_priority()


def enabled_backends(torch) -> tuple:
    cuda = torch.backends.cuda
    return (cuda.cudnn_sdp_enabled(), cuda.flash_sdp_enabled(), cuda.mem_efficient_sdp_enabled(),
            cuda.math_sdp_enabled())


def test_hold_puts_cudnn_first_until_released(torch_with_priority):
    torch = torch_with_priority
    from torch.nn.attention import SDPBackend, sdpa_kernel

    flash_first = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH,
                   SDPBackend.CUDNN_ATTENTION, SDPBackend.OVERRIDEABLE]
    with sdpa_kernel(flash_first, set_priority=True):  # a known order that does not start with cuDNN
        before, enabled_before = sdpa_backends.current_priority(), enabled_backends(torch)
        assert before[0] == "FLASH_ATTENTION"
        order = sdpa_backends.hold_cudnn_first()
        assert order[:len(CUDNN_FIRST)] == list(CUDNN_FIRST)
        assert sdpa_backends.current_priority() == order  # what torch itself reports now
        assert enabled_backends(torch) == enabled_before == (True, True, True, True)
        sdpa_backends.release_sdpa_priority()
        assert sdpa_backends.current_priority() == before


def test_apply_sets_the_order_where_the_decision_says_so(torch_with_priority, monkeypatch):
    monkeypatch.setattr(sdpa_backends, "probe_machine", lambda: H200_TORCH_2_11)
    note = sdpa_backends.apply_sdpa_priority("sdpa")
    assert note["cudnn_first"] is True and note["order"][0] == "CUDNN_ATTENTION"
    assert sdpa_backends.current_priority()[0] == "CUDNN_ATTENTION"


def test_apply_on_this_machine_without_a_gpu_changes_nothing(torch_with_priority):
    if torch_with_priority.cuda.is_available():
        pytest.skip("this machine has a GPU")
    before = sdpa_backends.current_priority()
    note = sdpa_backends.apply_sdpa_priority("sdpa")
    assert note == {"cudnn_first": False, "reason": "no CUDA GPU; SDPA keeps PyTorch's own backend order"}
    assert sdpa_backends.current_priority() == before


def test_the_held_order_survives_and_ends_with_the_process(torch_with_priority):
    """Held for the life of a job: later SDPA calls (forward and backward) run under it, and exit stays quiet."""
    script = ("import gc, torch\n"
              "from ftimg_jobs.model import sdpa_backends as s\n"
              "s.hold_cudnn_first(); gc.collect()\n"
              "q = torch.randn(1, 2, 8, 16, requires_grad=True)\n"
              "torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True).sum().backward()\n"
              "print(s.current_priority()[0])\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=str(Path(sdpa_backends.__file__).parents[2])))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "CUDNN_ATTENTION"
    assert result.stderr == ""
