"""Default batch from the KV-cache budget, and how generated sequences end (torch-free)."""

from ftimg_jobs.generate.memory import ModelShape, cache_gib, slots_that_fit
from ftimg_jobs.generate.stops import Ending, find_ending, first_stop

GIB = 2 ** 30
LLAMA2_7B = ModelShape(layers=32, kv_heads=32, head_dim=128, hidden=4096, intermediate=11008, vocab=32000,
                       dtype_bytes=2)


def test_kv_cache_of_llama2_7b_is_half_a_megabyte_per_token():
    assert LLAMA2_7B.kv_bytes_per_token == 512 * 1024
    assert round(cache_gib(1, 4224, LLAMA2_7B), 2) == 2.06


def test_an_h200_after_a_7b_model_holds_the_cap_at_short_prompts_and_dozens_at_4096():
    free = 125 * GIB
    assert slots_that_fit(free, 640, 512, LLAMA2_7B) == 256
    at_4096 = slots_that_fit(free, 4096 + 128, 4096, LLAMA2_7B)
    assert 40 <= at_4096 <= 56 and at_4096 % 8 == 0
    assert at_4096 * cache_gib(1, 4224, LLAMA2_7B) < free / GIB - 4  # leaves the workspace free


def test_too_little_memory_gives_zero_rows():
    assert slots_that_fit(3 * GIB, 4224, 4096, LLAMA2_7B) == 0


def test_small_counts_are_not_rounded_to_zero():
    rows = slots_that_fit(19 * GIB, 4224, 4096, LLAMA2_7B)
    assert 1 <= rows < 8


def decode(tokens):
    return "".join(chr(ord("a") + t) for t in tokens)


def test_first_stop_is_the_earliest_of_several():
    assert first_stop("hello world.\n\nbye", ["\n\n", "world"]) == 6
    assert first_stop("hello", ["x"]) is None


def test_eos_ends_the_sequence_and_is_kept():
    assert find_ending([1, 2, 9, 4], 0, {9}, 10, (), decode) == Ending(3, "eos")


def test_length_ends_at_the_budget_and_drops_what_ran_past_it():
    assert find_ending([1, 2, 3, 4, 5], 0, {9}, 4, (), decode) == Ending(4, "length")
    assert find_ending([1, 2, 3], 0, {9}, 4, (), decode) is None


def test_eos_past_the_budget_does_not_count():
    assert find_ending([1, 2, 3, 9], 0, {9}, 3, (), decode) == Ending(3, "length")


def test_stop_string_counts_tokens_up_to_the_one_that_completed_it():
    # tokens decode to "abcdcd"; the stop "dc" is complete after 5 tokens and starts at index 3
    assert find_ending([0, 1, 2, 3, 2, 3], 0, set(), 10, ("dc",), decode) == Ending(5, "stop", 3)


def test_stop_string_before_eos_wins_and_only_new_tokens_are_searched():
    assert find_ending([0, 1, 2, 9], 0, {9}, 10, ("bc",), decode) == Ending(3, "stop", 1)
    assert find_ending([0, 1, 2, 3], 2, set(), 10, ("cd",), decode) == Ending(4, "stop", 2)
