"""Attention backend choice and the classification/regression metrics."""

import pytest

from ftimg_jobs.model.attention import choose_attention
from ftimg_jobs.train.metrics import classification_metrics, regression_metrics


def choose(requested="auto", flash_requested=False, installed=True, cuda=True, capability=(9, 0), half=True):
    return choose_attention(requested, flash_requested, installed, cuda, capability, half)


def test_flash_when_installed_on_ampere_or_newer_in_half_precision():
    assert choose()[0] == "flash_attention_2"


@pytest.mark.parametrize("kwargs, reason", [
    ({"installed": False}, "not installed"),
    ({"cuda": False, "capability": None}, "no CUDA GPU"),
    ({"capability": (7, 0)}, "compute capability 7.0 is below 8.0"),
    ({"half": False}, "not in fp16/bf16"),
])
def test_sdpa_fallback_says_why(kwargs, reason):
    implementation, why = choose(flash_requested=True, **kwargs)
    assert implementation == "sdpa" and reason in why


def test_explicit_choice_is_kept():
    assert choose(requested="eager")[0] == "eager"
    assert choose(requested="sdpa")[0] == "sdpa"


def test_classification_metrics():
    metrics = classification_metrics([0, 1, 1, 2], [0, 1, 2, 2], num_labels=3)
    assert metrics["accuracy"] == 0.75
    assert metrics["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_regression_metrics():
    metrics = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert metrics["mse"] == pytest.approx(1 / 3)
    assert metrics["pearson"] == pytest.approx(0.9819805)
    assert regression_metrics([1.0, 1.0], [0.0, 2.0])["pearson"] == 0.0
