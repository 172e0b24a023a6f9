"""Padding-free rows: examples end to end, position ids restart, no loss across a boundary (torch-free)."""

from ftimg_jobs.data.packing import flatten_examples, real_token_count, segment_bounds
from ftimg_jobs.data.tokenization import IGNORE_INDEX


def test_examples_are_laid_end_to_end_with_restarting_positions():
    features = [{"input_ids": [5, 6, 7], "labels": [IGNORE_INDEX, 6, 7]},
                {"input_ids": [8, 9], "labels": [8, 9]}]
    row = flatten_examples(features)
    assert row["input_ids"] == [5, 6, 7, 8, 9]
    assert row["position_ids"] == [0, 1, 2, 0, 1]


def test_first_label_of_every_example_is_ignored():
    features = [{"input_ids": [1, 2], "labels": [1, 2]}, {"input_ids": [3, 4, 5], "labels": [3, 4, 5]}]
    assert flatten_examples(features)["labels"] == [IGNORE_INDEX, 2, IGNORE_INDEX, 4, 5]


def test_single_example_row_is_the_example():
    row = flatten_examples([{"input_ids": [4, 5, 6], "labels": [4, 5, 6]}])
    assert row == {"input_ids": [4, 5, 6], "position_ids": [0, 1, 2], "labels": [IGNORE_INDEX, 5, 6]}


def test_real_tokens_are_counted_before_padding():
    assert real_token_count([{"input_ids": [1, 2, 3]}, {"input_ids": [4]}]) == 4


def test_segments_start_where_positions_restart():
    assert segment_bounds([0, 1, 2, 0, 1, 0]) == [(0, 3), (3, 5), (5, 6)]


def test_one_example_is_one_segment():
    assert segment_bounds([0, 1, 2, 3]) == [(0, 4)]


def test_a_row_not_starting_at_zero_still_starts_a_segment_at_its_first_token():
    assert segment_bounds([4, 5, 0, 1]) == [(0, 2), (2, 4)]
