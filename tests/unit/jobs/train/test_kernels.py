"""Which Liger kernel serves RoPE (train/kernels.py)."""

import os
import sys
import types
from types import SimpleNamespace

import pytest

pytest.importorskip("torch")

from ftimg_jobs.train import kernels  # noqa: E402
from ftimg_jobs.train.kernels import pin_liger_rope  # noqa: E402


def test_rope_goes_to_liger_triton_kernel_when_nothing_is_chosen():
    env = {"PATH": "/bin"}
    assert pin_liger_rope(env) == "nvidia-triton (one compile for every sequence length)"
    assert env == {"PATH": "/bin", "LIGER_KERNEL_IMPL_ROPE": "nvidia-triton"}


@pytest.mark.parametrize("name", ["LIGER_KERNEL_IMPL_ROPE", "LIGER_KERNEL_BACKEND_ROPE", "LIGER_KERNEL_IMPL",
                                  "LIGER_KERNEL_BACKEND"])
def test_a_choice_the_user_made_is_kept_and_named(name):
    env = {name: "nvidia-cutedsl"}
    assert pin_liger_rope(env) == f"nvidia-cutedsl ({name} given)"
    assert env == {name: "nvidia-cutedsl"}


def test_an_empty_variable_is_no_choice():
    env = {"LIGER_KERNEL_IMPL_ROPE": ""}
    pin_liger_rope(env)
    assert env["LIGER_KERNEL_IMPL_ROPE"] == "nvidia-triton"


def test_applying_liger_pins_its_rope_and_says_so(monkeypatch):
    """apply_liger patches the model and pins RoPE in the process environment; run.json gets the choice."""
    patched = []
    monkey_patch = types.ModuleType("liger_kernel.transformers.monkey_patch")
    monkey_patch._apply_liger_kernel_to_instance = lambda **kwargs: patched.append(kwargs)
    monkeypatch.setitem(sys.modules, "liger_kernel.transformers.monkey_patch", monkey_patch)
    monkeypatch.setattr(kernels, "liger_unavailable_reason", lambda model: None)
    monkeypatch.setenv("LIGER_KERNEL_IMPL_ROPE", "")  # recorded, so the pin is undone after the test
    for name in ("LIGER_KERNEL_BACKEND_ROPE", "LIGER_KERNEL_IMPL", "LIGER_KERNEL_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    model = object()
    note = kernels.apply_liger(model, SimpleNamespace(liger_kernels=True), causal_lm=False)
    assert patched == [{"model": model, "fused_linear_cross_entropy": False, "cross_entropy": False,
                        "rms_norm": True, "swiglu": True, "rope": True, "geglu": True, "layer_norm": True}]
    assert note["rope"] == "nvidia-triton (one compile for every sequence length)"
    assert note["fused_mlp"] is True
    assert os.environ["LIGER_KERNEL_IMPL_ROPE"] == "nvidia-triton"


def stand_in_liger(monkeypatch) -> list:
    patched = []
    monkey_patch = types.ModuleType("liger_kernel.transformers.monkey_patch")
    monkey_patch._apply_liger_kernel_to_instance = lambda **kwargs: patched.append(kwargs)
    monkeypatch.setitem(sys.modules, "liger_kernel.transformers.monkey_patch", monkey_patch)
    monkeypatch.setattr(kernels, "liger_unavailable_reason", lambda model: None)
    return patched


def test_compiled_layers_keep_only_the_fused_loss(monkeypatch):
    """Under regional compilation inductor fuses norms, RoPE and SwiGLU; Liger only replaces the loss."""
    patched = stand_in_liger(monkeypatch)
    monkeypatch.delenv("LIGER_KERNEL_IMPL_ROPE", raising=False)
    model = object()
    note = kernels.apply_liger(model, SimpleNamespace(liger_kernels=True), causal_lm=True, layers_compiled=True)
    assert patched == [{"model": model, "fused_linear_cross_entropy": True, "cross_entropy": False,
                        "rms_norm": False, "swiglu": False, "rope": False, "geglu": False, "layer_norm": False}]
    assert note["kernels"] == ["fused linear cross-entropy"] and note["fused_mlp"] is False
    assert note["rope"] is None and "LIGER_KERNEL_IMPL_ROPE" not in os.environ


def test_compiled_cls_layers_need_no_liger(monkeypatch):
    patched = stand_in_liger(monkeypatch)
    note = kernels.apply_liger(object(), SimpleNamespace(liger_kernels=True), causal_lm=False, layers_compiled=True)
    assert patched == [] and note["applied"] is False and "compiled decoder layers" in note["reason"]
