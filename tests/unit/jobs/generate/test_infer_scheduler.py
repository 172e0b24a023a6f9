"""The static engine's plan: waves, segments, cache lengths, refills and shrinking (torch-free)."""

import pytest

from ftimg_jobs.generate.scheduler import (
    Segment,
    cache_length_for,
    even_slots,
    plan_segments,
    refill_count,
    shrink_to,
)


def test_cache_length_covers_prompt_and_new_tokens_rounded_to_the_bucket():
    assert cache_length_for(100, 28) == 128
    assert cache_length_for(100, 29, bucket=64) == 192
    assert cache_length_for(1, 1, bucket=64) == 64


def test_even_slots_fills_waves_evenly():
    assert even_slots(300, 256) == 152  # two waves of ~150, not 256 + 44
    assert even_slots(256, 256) == 256
    assert even_slots(5, 256) == 8  # multiple of 8 (never above what fits)
    assert even_slots(5, 3) == 3


def test_even_slots_needs_room_for_one_row():
    with pytest.raises(ValueError):
        even_slots(4, 0)


def test_plan_takes_full_waves_longest_first_and_merges_equal_cache_lengths():
    lengths = {index: 10 + index for index in range(40)}  # 10..49 tokens
    segments = plan_segments(list(lengths), lengths, max_new_tokens=14, slots_at=lambda length: 8, bucket=16)
    # Each wave of 8 is sized by its longest prompt: 49+14=63 -> 64, 41+14 -> 64, 33+14 -> 48, 25+14 -> 48, 17+14 -> 32.
    assert [(segment.cache_length, segment.slots, len(segment.ids)) for segment in segments] == [
        (64, 8, 16), (48, 8, 16), (32, 8, 8)]
    assert segments[0].ids[:3] == (39, 38, 37)
    assert sorted(sum((list(segment.ids) for segment in segments), [])) == list(range(40))
    for segment in segments:
        assert all(lengths[i] + 14 <= segment.cache_length for i in segment.ids)


def test_plan_gives_short_segments_more_slots_when_memory_allows():
    lengths = {"long": 900, **{f"s{n}": 50 for n in range(30)}}
    budget = 4096  # cache columns that fit in memory, in total
    segments = plan_segments(list(lengths), lengths, 100, slots_at=lambda length: budget // length, bucket=64)
    assert segments[0] == Segment(1024, 4, ("long",) + tuple(f"s{n}" for n in range(3)))
    assert segments[1].cache_length == 192 and segments[1].slots == 16  # 27 prompts, at most 21 a wave: 2 waves of 14 -> 16


def test_plan_coarsens_the_bucket_when_there_would_be_too_many_segments():
    lengths = {index: 64 * index + 1 for index in range(1, 30)}
    segments = plan_segments(list(lengths), lengths, 10, slots_at=lambda length: 1, bucket=64, max_segments=6)
    assert len(segments) <= 6
    assert sum(len(segment.ids) for segment in segments) == 29


def test_plan_of_nothing_is_empty():
    assert plan_segments([], {}, 10, slots_at=lambda length: 8) == []


@pytest.mark.parametrize("free, waiting, slots, expected", [
    (0, 10, 64, 0),  # no room
    (5, 0, 64, 0),  # nothing to add
    (7, 100, 64, 0),  # fewer than an eighth free: a prefill call would cost more than the idle slots
    (8, 100, 64, 8),
    (3, 3, 64, 3),  # the last prompts go in at once
    (64, 10, 64, 10),
])
def test_refill_count(free, waiting, slots, expected):
    assert refill_count(free, waiting, slots) == expected


def test_shrink_only_when_nothing_waits_few_rows_remain_and_enough_steps_are_left():
    assert shrink_to(active=20, slots=64, waiting=0, steps_left=100) == 32
    assert shrink_to(active=5, slots=64, waiting=0, steps_left=100) == 8
    assert shrink_to(active=40, slots=64, waiting=0, steps_left=100) is None  # more than half busy
    assert shrink_to(active=20, slots=64, waiting=3, steps_left=100) is None  # refills need the slots
    assert shrink_to(active=20, slots=64, waiting=0, steps_left=10) is None  # capture would not pay
    assert shrink_to(active=3, slots=8, waiting=0, steps_left=100) is None  # already the smallest size
