import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from speed_profile import busy_microseconds, summarize  # noqa: E402


def test_overlapping_kernels_count_once_and_gaps_not_at_all():
    assert busy_microseconds([(0, 10), (5, 12), (20, 25), (21, 22)]) == 17
    assert busy_microseconds([]) == 0


def test_summary_splits_per_step_and_ranks_kernels():
    kernels = [("gemm", 0, 600), ("norm", 700, 800), ("gemm", 1000, 1600), ("norm", 1700, 1800)]
    summary = summarize(kernels, steps=2, wall_seconds=0.004)
    assert summary["gpu_busy_seconds_per_step"] == pytest.approx(0.0007)
    assert summary["gpu_busy_share"] == pytest.approx(0.35)
    assert summary["kernels_per_step"] == 2
    assert [k["name"] for k in summary["top_kernels"]] == ["gemm", "norm"]
    assert summary["top_kernels"][0]["ms_per_step"] == pytest.approx(0.6)
