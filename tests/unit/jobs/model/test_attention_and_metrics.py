"""Attention backend choice and the classification/regression metrics."""

from dataclasses import replace

import pytest

from ftimg_jobs.model.attention import AttentionProbe, choose_attention, flash4_model_problem
from ftimg_jobs.train.metrics import classification_metrics, regression_metrics

H200 = AttentionProbe(flash2_installed=True, flash4_problem=None, cuda=True, capability=(9, 0),
                      half_weights=True, half_compute=True)
# What a CPU machine without either package probes (this one, and the cu121 image's CPU runs).
NOT_INSTALLED = "the flash-attn-4 package is not installed (the cu130-torch2.11 image has it)"
CPU = AttentionProbe(flash2_installed=False, flash4_problem=NOT_INSTALLED, cuda=False, capability=None,
                     half_weights=False, half_compute=False)


def choose(requested="auto", flash_requested=False, **probe):
    return choose_attention(requested, flash_requested, replace(H200, **probe))


def test_flash4_first_on_hopper_and_blackwell_in_half_precision():
    for capability, name in [((9, 0), "Hopper"), ((10, 0), "Blackwell"), ((10, 3), "Blackwell"),
                             ((11, 0), "Blackwell")]:
        implementation, reason = choose(capability=capability)
        assert implementation == "flash_attention_4" and name in reason


def test_flash4_runs_under_autocast_over_fp32_weights():
    """Full fine-tuning: fp32 master weights, bf16 autocast. flash-attn 2 needs half-precision weights."""
    assert choose(half_weights=False, half_compute=True)[0] == "flash_attention_4"
    implementation, reason = choose(half_weights=False, half_compute=True, flash4_problem="no package")
    assert implementation == "sdpa" and "not in fp16/bf16" in reason


@pytest.mark.parametrize("probe, reason", [
    ({"flash4_problem": NOT_INSTALLED}, "flash-attn-4 package is not installed"),
    ({"capability": (8, 0)}, "compute capability 8.0 is not Hopper"),
    ({"capability": (12, 0)}, "compute capability 12.0 is not Hopper"),
    ({"half_compute": False}, "not run in fp16/bf16"),
])
def test_flash2_next_when_flash4_cannot_run_says_why(probe, reason):
    implementation, why = choose(**probe)
    assert implementation == "flash_attention_2" and "FlashAttention-4 unavailable" in why and reason in why


def test_sdpa_last_says_why_for_both():
    implementation, why = choose_attention("auto", False, CPU)
    assert implementation == "sdpa" and why.startswith("default (")
    assert "FlashAttention-4 unavailable: " + NOT_INSTALLED + "; there is no CUDA GPU" in why
    assert "flash-attn 2 unavailable: the flash_attn package is not installed" in why


@pytest.mark.parametrize("kwargs, reason", [
    ({"flash2_installed": False}, "not installed"),
    ({"cuda": False, "capability": None}, "no CUDA GPU"),
    ({"capability": (7, 0)}, "compute capability 7.0 is below 8.0"),
    ({"half_weights": False}, "not in fp16/bf16"),
])
def test_sdpa_fallback_of_flash2_says_why(kwargs, reason):
    implementation, why = choose(flash_requested=True, flash4_problem="no package", **kwargs)
    assert implementation == "sdpa" and reason in why and not why.startswith("default")


def test_insisting_on_flash4_falls_back_with_the_reason_the_caller_raises():
    assert choose(requested="flash_attention_4")[0] == "flash_attention_4"
    implementation, why = choose(requested="flash_attention_4", capability=(8, 6))
    assert implementation == "sdpa" and why.startswith("FlashAttention-4 unavailable: ") and "8.6" in why


def test_explicit_choices_refuse_flash4():
    assert choose(requested="flash_attention_2")[0] == "flash_attention_2"
    assert choose(requested="eager") == ("eager", "--attn_implementation eager")
    assert choose(requested="sdpa") == ("sdpa", "--attn_implementation sdpa")
    with pytest.raises(ValueError, match="flash_attention_3"):
        choose(requested="flash_attention_3")


@pytest.mark.parametrize("head_dim, capability, problem", [
    (128, (9, 0), None), (64, (10, 0), None), (256, (9, 0), None), (256, (10, 0), None),
    (192, (9, 0), None), (192, (10, 0), "head size 192"), (100, (9, 0), "head size 100"),
    (512, (9, 0), "head size 512"),
])
def test_flash4_head_sizes_follow_its_kernels(head_dim, capability, problem):
    found = flash4_model_problem(head_dim, capability, sliding_window=False, attention_dropout=0.0)
    assert found == problem if problem is None else problem in found


def test_flash4_refuses_sliding_windows_and_attention_dropout():
    assert "sliding-window" in flash4_model_problem(128, (9, 0), sliding_window=True, attention_dropout=0.0)
    assert "attention_dropout is 0.1" in flash4_model_problem(128, (9, 0), sliding_window=False, attention_dropout=0.1)


def test_classification_metrics():
    metrics = classification_metrics([0, 1, 1, 2], [0, 1, 2, 2], num_labels=3)
    assert metrics["accuracy"] == 0.75
    assert metrics["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_regression_metrics():
    metrics = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert metrics["mse"] == pytest.approx(1 / 3)
    assert metrics["pearson"] == pytest.approx(0.9819805)
    assert regression_metrics([1.0, 1.0], [0.0, 2.0])["pearson"] == 0.0
