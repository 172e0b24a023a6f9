"""Length-sorted batching and rank sharding of the infer job."""

import pytest

from ftimg_jobs.generate.batching import batches, rank_share, sort_longest_first


def test_sort_longest_first_is_stable():
    lengths = {"a": 3, "b": 9, "c": 3, "d": 1}
    assert sort_longest_first(["a", "b", "c", "d"], lengths) == ["b", "a", "c", "d"]


def test_batches_of_sorted_ids_group_similar_lengths():
    lengths = {index: length for index, length in enumerate([5, 50, 6, 48, 7, 49])}
    ordered = sort_longest_first(list(lengths), lengths)
    assert [[lengths[i] for i in batch] for batch in batches(ordered, 3)] == [[50, 49, 48], [7, 6, 5]]


def test_last_batch_may_be_short():
    assert batches([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]


def test_rank_shares_are_disjoint_and_cover_everything():
    ids = list(range(11))
    shares = [rank_share(ids, rank, 3) for rank in range(3)]
    assert sorted(sum(shares, [])) == ids
    assert shares[0] == [0, 3, 6, 9]


@pytest.mark.parametrize("call", [lambda: batches([1], 0), lambda: rank_share([1], 2, 2)])
def test_bad_sizes_are_refused(call):
    with pytest.raises(ValueError):
        call()
