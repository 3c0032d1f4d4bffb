"""Wilson intervals and the retry curve with its suggested limit, on hand-made histograms."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobtrail.intervals import Proportion, wilson_interval
from jobtrail.retry_curve import retry_curve


@pytest.mark.parametrize(
    ("hits", "total", "low", "high"),
    [
        (0, 10, 0.0, 0.2775),  # published values (Wilson 1927; Newcombe 1998, table I)
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),
    ],
)
def test_wilson_interval_matches_published_values(
    hits: int, total: int, low: float, high: float
) -> None:
    interval = wilson_interval(hits, total)
    assert interval is not None
    assert interval == pytest.approx((low, high), abs=1e-4)


@given(st.integers(1, 10_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_the_interval_holds_the_rate_within_0_and_1(case: tuple[int, int]) -> None:
    hits, total = case
    interval = Proportion(hits, total).interval
    assert interval is not None
    low, high = interval
    assert 0.0 <= low <= hits / total <= high <= 1.0


def test_no_trials_no_interval_and_impossible_counts_are_refused() -> None:
    assert wilson_interval(0, 0) is None
    assert Proportion(0, 0).rate is None
    with pytest.raises(ValueError, match="hits"):
        wilson_interval(11, 10)


def test_points_are_suffix_sums_of_finished_jobs_without_cancelled_ones() -> None:
    retries = Counter({"completed:0": 50, "completed:1": 20, "failed:1": 5, "completed:2": 3,
                       "failed:3": 7, "cancelled:1": 100})  # fmt: skip
    curve = retry_curve(retries, min_jobs=1)
    assert [(p.failed_at_least, p.chance.hits, p.chance.total) for p in curve.points] == [
        (0, 73, 85),
        (1, 23, 35),
        (2, 3, 10),
        (3, 0, 7),
    ]


def test_the_limit_is_the_smallest_k_from_which_the_chance_stays_below_the_threshold() -> None:
    # P(success | failed >= k): k=1 62/300, k=2 12/200 (6%), k=3 4/150 (2.7%), k=4 1/100 (1%)
    retries = Counter({
        "completed:1": 50, "failed:1": 50, "completed:2": 8, "failed:2": 42,
        "completed:3": 3, "failed:3": 47, "completed:4": 1, "failed:4": 99,
    })  # fmt: skip
    curve = retry_curve(retries, threshold=0.05, min_jobs=30)
    assert curve.suggested_limit == 3
    assert "of 150 jobs that failed 3+ times, 4 succeeded: 2.7%" in curve.evidence
    assert retry_curve(retries, threshold=0.07, min_jobs=30).suggested_limit == 2


def test_a_rise_in_the_tail_moves_the_limit_past_it() -> None:
    # k=2 is below 5%, k=3 rises above it again: only k=4 on stays below.
    retries = Counter({"failed:2": 200, "completed:3": 10, "failed:3": 40, "failed:4": 60})
    curve = retry_curve(retries, threshold=0.05, min_jobs=30)
    assert [round(p.chance.rate or 0, 3) for p in curve.points[2:]] == [0.032, 0.091, 0.0]
    assert curve.suggested_limit == 4


def test_thin_data_gives_no_limit_and_says_so() -> None:
    retries = Counter({"completed:0": 500, "failed:1": 3, "failed:2": 2})
    curve = retry_curve(retries, min_jobs=30)
    assert curve.suggested_limit is None
    assert curve.evidence.startswith("not enough data")
    assert retry_curve(Counter()).points == ()


def test_retries_that_keep_paying_off_give_no_limit() -> None:
    retries = Counter({"completed:1": 80, "failed:1": 20, "completed:2": 30, "failed:2": 10})
    curve = retry_curve(retries, min_jobs=30)
    assert curve.suggested_limit is None
    assert curve.evidence.startswith("keep retrying")
