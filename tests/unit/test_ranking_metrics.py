"""Ranking metrics at K (docs/contracts.md), checked against hand-computed closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spark_jobs.common.ranking import ideal_dcg, mean_metrics, user_metrics

pytestmark = pytest.mark.unit


def lg(rank: int) -> float:
    """The discount denominator log2(rank + 1)."""
    return math.log2(rank + 1)


def check(got, precision, recall, ndcg, ap):
    assert got == {
        "precision": pytest.approx(precision),
        "recall": pytest.approx(recall),
        "ndcg": pytest.approx(ndcg),
        "ap": pytest.approx(ap),
    }


def test_no_hits_are_all_zero():
    check(user_metrics([1, 2, 3], {9}, k=3), 0.0, 0.0, 0.0, 0.0)


def test_all_hits_are_all_one():
    check(user_metrics([1, 2, 3], {3, 2, 1}, k=3), 1.0, 1.0, 1.0, 1.0)


def test_fewer_relevant_than_k():
    # Hits at ranks 2 and 4; |T| = 2 < K = 5, so IDCG and AP's denominator use 2 items.
    check(
        user_metrics([5, 1, 6, 2, 7], {1, 2}, k=5),
        precision=2 / 5,
        recall=2 / 2,
        ndcg=(1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3)),
        ap=(1 / 2 + 2 / 4) / 2,
    )


def test_more_relevant_than_k():
    # Hits at ranks 1 and 3; |T| = 5 > K = 3, so IDCG and AP's denominator use K = 3 items.
    check(
        user_metrics([1, 2, 3], {1, 3, 7, 8, 9}, k=3),
        precision=2 / 3,
        recall=2 / 5,
        ndcg=(1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3) + 1 / math.log2(4)),
        ap=(1 / 1 + 2 / 3) / 3,
    )


def test_hit_at_rank_one_beats_hit_at_rank_k():
    first = user_metrics([4, 5, 6], {4}, k=3)
    last = user_metrics([5, 6, 4], {4}, k=3)
    check(first, precision=1 / 3, recall=1.0, ndcg=1.0, ap=1.0)
    check(last, precision=1 / 3, recall=1.0, ndcg=1 / math.log2(4), ap=(1 / 3) / 1)


def test_shorter_list_than_k_still_divides_precision_by_k():
    # implicit's ranking_metrics_at_k would report precision 1/min(K, |T|) = 1/2 here; ours is 1/K.
    check(
        user_metrics([1], {1, 2}, k=10),
        precision=1 / 10,
        recall=1 / 2,
        ndcg=1 / (1 + 1 / math.log2(3)),
        ap=(1 / 1) / 2,
    )
    check(user_metrics([], {1}, k=10), 0.0, 0.0, 0.0, 0.0)


def test_single_relevant_item_precision_is_over_k_not_over_t():
    assert user_metrics([7], {7}, k=10)["precision"] == pytest.approx(1 / 10)


def test_items_beyond_k_are_ignored():
    check(user_metrics([5, 6, 1], {1}, k=2), 0.0, 0.0, 0.0, 0.0)


def test_repeated_recommendation_counts_once():
    check(
        user_metrics([1, 1], {1, 2}, k=2),
        precision=1 / 2,
        recall=1 / 2,
        ndcg=1 / (1 + 1 / math.log2(3)),
        ap=(1 / 1) / 2,
    )


def test_numpy_inputs_as_from_arrow_batches():
    got = user_metrics(np.array([3, 8], dtype=np.int32), np.array([8, 8], dtype=np.int32), k=2)
    check(got, precision=1 / 2, recall=1.0, ndcg=1 / math.log2(3), ap=(1 / 2) / 1)


def test_ideal_dcg():
    assert ideal_dcg(0, 5) == 0.0
    assert ideal_dcg(2, 5) == pytest.approx(1 + 1 / lg(2))
    assert ideal_dcg(9, 3) == pytest.approx(1 + 1 / lg(2) + 1 / lg(3))


@pytest.mark.parametrize(("recommended", "relevant", "k"), [([1], set(), 3), ([1], {1}, 0)])
def test_invalid_inputs_raise(recommended, relevant, k):
    with pytest.raises(ValueError):
        user_metrics(recommended, relevant, k)


def test_mean_metrics_averages_and_counts_unlisted_users_as_zero():
    users = [user_metrics([1, 2], {1}, k=2), user_metrics([3, 4], {4}, k=2)]
    # User 1: hit at rank 1; user 2: hit at rank 2.
    assert mean_metrics(users) == {
        "precision": pytest.approx((1 / 2 + 1 / 2) / 2),
        "recall": pytest.approx(1.0),
        "ndcg": pytest.approx((1 + 1 / math.log2(3)) / 2),
        "map": pytest.approx((1 + 1 / 2) / 2),
    }
    # A third evaluated user got no recommendations: zeros in every mean.
    assert mean_metrics(users, n_users=3) == {
        "precision": pytest.approx(1 / 3),
        "recall": pytest.approx(2 / 3),
        "ndcg": pytest.approx((1 + 1 / math.log2(3)) / 3),
        "map": pytest.approx((1 + 1 / 2) / 3),
    }


def test_mean_metrics_rejects_bad_counts():
    with pytest.raises(ValueError):
        mean_metrics([])
    with pytest.raises(ValueError):
        mean_metrics([user_metrics([1], {1}, k=1)] * 2, n_users=1)
