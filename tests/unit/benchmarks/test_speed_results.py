import json

import pytest
from speed_results import (FORMAT, ResultsMismatch, is_measured, load_results, new_results, record_run,
                           save_results)

SETTINGS = {"tiny": False, "steps": 20, "warmup": 3, "parity_steps": 50, "shapes": {"fixed": 4096}, "repeats": 3}
H200 = {"gpu": "NVIDIA H200"}


def saved(tmp_path, settings=SETTINGS, gpu=H200):
    results = new_results(settings)
    results["calls"].append({"environment": gpu})
    record_run(results, {"name": "baseline-lora-gc"}, 0, {"tokens_per_second": 6000.0})
    record_run(results, {"name": "ftimg-lora-24gib"}, 0, {"error": "stopped after 120 s"})
    path = tmp_path / "results.json"
    save_results(path, results)
    return path


def test_a_later_call_continues_the_file(tmp_path):
    path = saved(tmp_path)
    results = load_results(path, {**SETTINGS, "repeats": 5}, H200)
    assert is_measured(results, "baseline-lora-gc", 0)
    assert not is_measured(results, "ftimg-lora-24gib", 0)  # a failed run is tried again
    assert not is_measured(results, "baseline-lora-gc", 1)
    assert results["settings"]["repeats"] == 5


def test_no_file_gives_empty_results(tmp_path):
    results = load_results(tmp_path / "results.json", SETTINGS, H200)
    assert results["format"] == FORMAT and results["runs"] == {}


def test_other_settings_are_refused_with_what_differs(tmp_path):
    path = saved(tmp_path)
    with pytest.raises(ResultsMismatch, match="--steps 20 there, 10 now"):
        load_results(path, {**SETTINGS, "steps": 10}, H200)


def test_another_gpu_is_refused(tmp_path):
    path = saved(tmp_path)
    with pytest.raises(ResultsMismatch, match="NVIDIA H200; this machine has NVIDIA H100"):
        load_results(path, SETTINGS, {"gpu": "NVIDIA H100 80GB HBM3"})


def test_a_file_of_the_older_benchmark_is_refused(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"environment": {}, "cases": {}}))
    with pytest.raises(ResultsMismatch, match="another version of the benchmark"):
        load_results(path, SETTINGS, H200)


def test_saving_leaves_no_temporary_file(tmp_path):
    path = saved(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    assert json.loads(path.read_text())["runs"]["baseline-lora-gc"]["0"]["tokens_per_second"] == 6000.0
