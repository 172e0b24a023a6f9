import pytest
from speed_stats import (case_summary, dense_bf16_peak_tflops, full_finetuning_mfu, loss_parity, pair_ratios,
                         run_rate, trailing_mean)


def test_a_runs_rate_is_real_tokens_over_the_measured_steps_time():
    steps = [{"seconds": 9.0, "tokens": 100}] + [{"seconds": 1.0, "tokens": 1000}, {"seconds": 3.0, "tokens": 1000}]
    rate = run_rate(steps, warmup=1, measured=2)
    assert rate["tokens_per_second"] == 500.0
    assert rate["median_step_seconds"] == 2.0
    assert rate["steps_measured"] == 2


def test_steps_beyond_the_measured_window_are_left_out():
    steps = [{"seconds": 1.0, "tokens": 10}] * 3 + [{"seconds": 100.0, "tokens": 10}] * 5
    assert run_rate(steps, warmup=1, measured=2)["tokens_per_second"] == 10.0


def test_too_few_steps_give_no_rate():
    assert run_rate([{"seconds": 1.0, "tokens": 10}] * 3, warmup=2, measured=2) is None


def test_median_and_spread_over_repeats_ignore_failed_runs():
    runs = {"0": {"tokens_per_second": 100.0, "peak_allocated_gib": 20.0},
            "1": {"tokens_per_second": 120.0, "peak_allocated_gib": 21.5},
            "2": {"tokens_per_second": 90.0, "peak_allocated_gib": 20.5},
            "3": {"error": "exit 1"}}
    summary = case_summary(runs)
    assert summary["rate"] == {"median": 100.0, "min": 90.0, "max": 120.0, "n": 3}
    assert summary["peak_gib"] == 21.5
    assert case_summary({"0": {"skipped": "no GPU"}}) is None


def test_ratios_of_medians_and_per_repeat():
    baseline = {"0": {"tokens_per_second": 100.0}, "1": {"tokens_per_second": 110.0}, "2": {"tokens_per_second": 90.0}}
    ftimg = {"0": {"tokens_per_second": 200.0}, "1": {"tokens_per_second": 230.0}, "2": {"error": "stopped"}}
    ratios = pair_ratios(baseline, ftimg)
    assert ratios["per_repeat"] == {0: 2.0, 1: pytest.approx(230 / 110)}
    assert ratios["of_medians"] == pytest.approx(215.0 / 100.0)
    assert "of_medians" not in pair_ratios(baseline, {})


def test_trailing_mean():
    assert trailing_mean([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]


def test_loss_parity_judges_the_smoothed_curves():
    baseline = [10.0 - 0.1 * step for step in range(50)]
    noisy = [loss * (1.05 if step % 2 else 0.95) for step, loss in enumerate(baseline)]
    parity = loss_parity(baseline, noisy, steps=50)
    assert parity["max_relative_difference_raw"] == pytest.approx(0.05)
    assert parity["max_relative_difference_smoothed"] < 0.02
    assert parity["within"]
    drifted = [loss * 1.03 for loss in baseline]
    assert not loss_parity(baseline, drifted, steps=50)["within"]


def test_loss_parity_needs_both_curves_long_enough():
    assert loss_parity([1.0] * 50, [1.0] * 49, steps=50) is None


def test_mfu_uses_the_dense_bf16_peak_of_known_gpus_only():
    assert dense_bf16_peak_tflops("NVIDIA H200") == 989.0
    assert dense_bf16_peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert dense_bf16_peak_tflops("NVIDIA H100 PCIe") is None
    assert dense_bf16_peak_tflops(None) is None
    # 6 x 6.6e9 x 7,500 tok/s = 297 TFLOP/s of 989.
    assert full_finetuning_mfu(7500.0, 6_600_000_000, "NVIDIA H200") == pytest.approx(0.3003, abs=1e-4)
    assert full_finetuning_mfu(7500.0, 6_600_000_000, "NVIDIA A10G") is None


def test_a_flat_loss_curve_is_flagged_as_saying_little():
    flat = [10.4] * 50
    parity = loss_parity(flat, flat, steps=50)
    assert parity["within"] and not parity["meaningful"]
    falling = [10.0 - 0.1 * step for step in range(50)]
    assert loss_parity(falling, falling, steps=50)["meaningful"]
