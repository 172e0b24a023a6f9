import pytest
from speed_plan import SHAPES_7B, SHAPES_TINY, estimate_runs, pairs, run_order, select_pairs


def names(runs):
    return [f"{run.case['name']} r{run.repeat}" for run in runs]


def test_pairs_come_most_important_first():
    assert [pair.name for pair in pairs(SHAPES_7B)] == ["lora", "qlora", "cls", "full", "varlen", "qlora-8gib",
                                                      "qlora-lean", "full-8bit", "lora-eager", "qlora-eager",
                                                      "qlora-lean-eager", "varlen-eager", "full-eager", "cls-compile",
                                                      "lora-cppwrapper", "lora-17-checkpointed", "lora-nan-filter",
                                                      "qlora-8gib-gc-unfrozen", "lora-expandable"]


def test_the_issue_15_shapes():
    by_name = {pair.name: pair for pair in pairs(SHAPES_7B)}
    assert by_name["lora"].ftimg["seq"] == 4096 and by_name["lora"].ftimg["argv"] == ["--gpu_memory_budget_gib", "24"]
    assert (by_name["cls"].baseline["seq"], by_name["cls"].baseline["batch"], by_name["cls"].baseline["shortest"]) \
        == (1024, 8, 50)
    assert (by_name["varlen"].ftimg["seq"], by_name["varlen"].ftimg["batch"]) == (2048, 4)
    assert by_name["qlora-lean"].baseline is by_name["qlora"].baseline
    assert by_name["qlora-8gib"].baseline is by_name["qlora"].baseline
    assert by_name["qlora-8gib"].ftimg["argv"] == ["--gpu_memory_budget_gib", "8"]
    assert by_name["full-8bit"].baseline is by_name["full"].baseline
    assert by_name["full-8bit"].ftimg["argv"] == ["--eight_bit_optimizer", "True"]
    assert all(pair.baseline["gc"] for pair in by_name.values())
    for name, lever, flag in (("lora", "eager", "False"), ("qlora", "eager", "False"), ("qlora-lean", "eager", "False"),
                              ("varlen", "eager", "False"), ("cls", "compile", "True"), ("full", "eager", "False")):
        pair = by_name[f"{name}-{lever}"]
        assert pair.baseline is by_name[name].baseline
        assert pair.ftimg["argv"] == by_name[name].ftimg["argv"] + ["--compile_layers", flag]


def test_a_lever_may_set_torch_switches_in_its_process_only():
    by_name = {pair.name: pair for pair in pairs(SHAPES_7B)}
    for name in ("lora",):
        pair = by_name[f"{name}-cppwrapper"]
        assert pair.ftimg["env"] == {"TORCHINDUCTOR_CPP_WRAPPER": "1"}
        assert pair.ftimg["argv"] == by_name[name].ftimg["argv"]
        assert pair.baseline is by_name[name].baseline and pair.baseline["env"] == {}
        assert pair.label.endswith(", TORCHINDUCTOR_CPP_WRAPPER=1")
    assert by_name[name].ftimg["env"] == {}


def test_no_ftimg_case_fixes_lora_dropout():
    for pair in pairs(SHAPES_7B):
        assert "--lora_dropout" not in pair.ftimg["argv"]


def test_baseline_and_ftimg_alternate_repeat_after_repeat():
    chosen = select_pairs(pairs(SHAPES_TINY), "lora,cls")
    assert names(run_order(chosen, repeats=3, total_steps=23, parity_steps=50)) == [
        "baseline-lora-gc r0", "ftimg-lora-24gib r0", "baseline-lora-gc r1", "ftimg-lora-24gib r1",
        "baseline-lora-gc r2", "ftimg-lora-24gib r2",
        "baseline-cls-padded r0", "ftimg-cls r0", "baseline-cls-padded r1", "ftimg-cls r1",
        "baseline-cls-padded r2", "ftimg-cls r2"]


def test_only_the_lora_pairs_first_repeat_runs_long_enough_for_the_loss_curve():
    runs = run_order(pairs(SHAPES_7B), repeats=2, total_steps=23, parity_steps=50)
    long = {f"{run.case['name']} r{run.repeat}" for run in runs if run.total_steps == 50}
    assert long == {"baseline-lora-gc r0", "ftimg-lora-24gib r0"}
    assert all(run.total_steps == 23 for run in runs if f"{run.case['name']} r{run.repeat}" not in long)


def test_the_shared_qlora_baseline_runs_once_per_repeat():
    runs = names(run_order(pairs(SHAPES_7B), repeats=3, total_steps=23, parity_steps=0))
    assert runs.count("baseline-qlora-gc r0") == 1 and runs.count("baseline-full-gc r0") == 1
    assert runs.count("baseline-lora-gc r0") == 1
    budget = runs.index("ftimg-qlora-8gib r0")
    assert runs[budget:budget + 9] == ["ftimg-qlora-8gib r0", "ftimg-qlora-8gib r1", "ftimg-qlora-8gib r2",
                                       "ftimg-qlora-lean r0", "ftimg-qlora-lean r1", "ftimg-qlora-lean r2",
                                       "ftimg-full-8bit r0", "ftimg-full-8bit r1", "ftimg-full-8bit r2"]


def test_the_memory_saving_pair_alone_brings_its_baseline():
    chosen = select_pairs(pairs(SHAPES_7B), "qlora-lean")
    assert names(run_order(chosen, repeats=1, total_steps=23, parity_steps=0)) == [
        "baseline-qlora-gc r0", "ftimg-qlora-lean r0"]


def test_a_case_name_runs_one_side_only():
    chosen = select_pairs(pairs(SHAPES_7B), "ftimg-full")
    assert names(run_order(chosen, repeats=2, total_steps=23, parity_steps=0)) == ["ftimg-full r0", "ftimg-full r1"]


def test_an_unknown_name_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="--only lorra: unknown; choose from .*lora"):
        select_pairs(pairs(SHAPES_7B), "lora,lorra")


def test_estimates_use_a_cases_own_runs_else_scale_the_first_measured_one():
    runs = run_order(select_pairs(pairs(SHAPES_7B), "lora,varlen"), repeats=2, total_steps=23, parity_steps=0)
    first = runs[0]
    measured = {"baseline-lora-gc": {"0": {"tokens_per_second": 6000.0, "wall_s": 40.0, "train_seconds": 23.0,
                                           "total_steps": 23}}}
    estimates = estimate_runs(runs[1:], measured, {"baseline-lora-gc": first.case})
    assert estimates["baseline-lora-gc", 1].seconds == 40.0
    assert estimates["baseline-lora-gc", 1].source == "measured"
    # Same tokens per step: the same 17 s of set-up and 23 s of steps.
    assert estimates["ftimg-lora-24gib", 0].seconds == pytest.approx(40.0)
    # The padded variable-length baseline computes 4 x 2048 tokens a step, twice as many.
    assert estimates["baseline-varlen-padded", 0].seconds == pytest.approx(17.0 + 46.0)
    # Its ftimg side computes only the real tokens: 4 x (50 + 2048) / 2 on average.
    assert estimates["ftimg-varlen", 0].seconds == pytest.approx(17.0 + 23.0 * 4 * 1049 / 4096)


def test_no_estimate_before_anything_is_measured():
    runs = run_order(pairs(SHAPES_7B), repeats=1, total_steps=23, parity_steps=0)
    assert estimate_runs(runs, {"baseline-lora-gc": {"0": {"error": "exit 1", "wall_s": 3.0}}}, {}) == {}
