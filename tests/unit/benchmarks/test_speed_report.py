"""Merging the results of several benchmark calls into one report (speed_report.merge)."""

import json

from speed_report import merge, pair_row
from speed_results import FORMAT


def results(runs: dict, parity_steps: int, gpu: str) -> dict:
    return {"format": FORMAT, "settings": {"steps": 20, "parity_steps": parity_steps}, "pairs": [],
            "calls": [{"environment": {"gpu": gpu}}], "cases": {name: {"name": name} for name in runs}, "runs": runs}


def test_a_case_the_later_call_ran_comes_whole_from_it_and_the_earlier_parity_runs_stay(tmp_path):
    first = tmp_path / "first.json"
    second = tmp_path / "second.json"
    first.write_text(json.dumps(results({"ftimg-cls": {"0": {"tokens_per_second": 1}, "1": {"tokens_per_second": 2}},
                                         "ftimg-lora-24gib": {"0": {"losses": [3.0]}}}, 50, "H200 a")))
    second.write_text(json.dumps(results({"ftimg-cls": {"0": {"tokens_per_second": 9}}}, 0, "H200 b")))
    merged = merge([first, second])
    assert merged["runs"]["ftimg-cls"] == {"0": {"tokens_per_second": 9, "call": 1}}
    assert merged["runs"]["ftimg-lora-24gib"] == {"0": {"losses": [3.0]}}
    assert merged["settings"]["parity_steps"] == 50
    assert [call["environment"]["gpu"] for call in merged["calls"]] == ["H200 a", "H200 b"]


def test_the_later_calls_own_parity_setting_wins_when_it_ran_parity_runs(tmp_path):
    first = tmp_path / "first.json"
    second = tmp_path / "second.json"
    first.write_text(json.dumps(results({"ftimg-lora-24gib": {"0": {"losses": [3.0]}}}, 50, "H200")))
    second.write_text(json.dumps(results({"ftimg-lora-24gib": {"0": {"losses": [2.0]}}}, 30, "H200")))
    assert merge([first, second])["settings"]["parity_steps"] == 30


def test_a_pair_whose_sides_come_from_two_calls_gets_no_ratio(tmp_path):
    """The later call re-measured the baseline only: its ratio against the earlier ftimg runs is not shown."""
    pair = {"label": "LoRA", "target": ">= 2x", "baseline": {"name": "baseline-lora-gc"},
            "ftimg": {"name": "ftimg-lora-24gib"}}
    run = {"tokens_per_second": 100.0, "peak_allocated_gib": 1.0, "call": 0}
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps(results({"baseline-lora-gc": {"0": run}, "ftimg-lora-24gib": {"0": {**run,
                                         "tokens_per_second": 200.0}}}, 0, "H200")))
    assert "**2.00**" in pair_row(pair, merge([first])["runs"])
    second.write_text(json.dumps(results({"baseline-lora-gc": {"0": {**run, "tokens_per_second": 50.0}}}, 0, "H200")))
    row = pair_row(pair, merge([first, second])["runs"])
    assert "sides from different calls" in row and "**-**" in row


def test_an_earlier_calls_pairs_keep_their_rows_and_unmeasured_levers_have_none(tmp_path):
    def pair(name, ftimg):
        return {"name": name, "label": name, "target": "", "baseline": {"name": "baseline"}, "ftimg": {"name": ftimg}}

    run = {"0": {"tokens_per_second": 1.0}}
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps({**results({"baseline": run, "ftimg-old-lever": run}, 0, "H200"),
                                 "pairs": [pair("lora", "ftimg-lora"), pair("old-lever", "ftimg-old-lever")]}))
    second.write_text(json.dumps({**results({"baseline": run, "ftimg-lora": run}, 0, "H200"),
                                  "pairs": [pair("lora", "ftimg-lora"), pair("never-run", "ftimg-never-run")]}))
    assert [p["name"] for p in merge([first, second])["pairs"]] == ["lora", "old-lever"]
    assert [p["name"] for p in merge([second])["pairs"]] == ["lora", "never-run"]
    # A pair stored without an ftimg side has no row either (and breaks nothing).
    second.write_text(json.dumps({**results({"baseline": run}, 0, "H200"),
                                  "pairs": [{**pair("full", "ftimg-full"), "ftimg": None}]}))
    assert [p["name"] for p in merge([first, second])["pairs"]] == ["old-lever"]
