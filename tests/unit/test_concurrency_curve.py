"""The concurrency read model (a pure fold over attempt outcomes) and its curve."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from jobtrail.concurrency_curve import concurrency_curve
from processors.outcomes import recompute
from projections.concurrency import ConcurrencyModel, fold
from schemas.derived import AttemptOutcome, AttemptOutcomeType
from streams.demo.workload import Workload, WorkloadConfig

Kind = AttemptOutcomeType


def outcome(
    job: str, attempt: int, kind: AttemptOutcomeType, on_worker: int, for_name: int
) -> AttemptOutcome:
    return AttemptOutcome(
        job_id=job, job_name="resize-image", attempt=attempt, outcome=kind, terminal=True,
        started_at_ms=0, ended_at_ms=1000, worker="w1", error_fingerprint=None,
        concurrent_on_worker=on_worker, concurrent_for_job_name=for_name,
    )  # fmt: skip


def rows(model: ConcurrencyModel, table: str, key: str) -> dict[int, tuple[int, int]]:
    levels = getattr(model, table)[key]
    return {level: (c.attempts, c.failures) for level, c in levels.items()}


def test_levels_count_attempts_and_failures_per_job_name_and_per_worker() -> None:
    model = fold([
        outcome("a", 1, Kind.COMPLETED, 1, 1),
        outcome("b", 1, Kind.FAILED, 2, 3),
        outcome("b", 2, Kind.STALLED, 2, 3),
        outcome("c", 1, Kind.COMPLETED, 2, 1),
        outcome("d", 1, Kind.CANCELLED, 1, 1),  # neither worked nor failed: not counted
    ])  # fmt: skip
    assert rows(model, "by_job_name", "resize-image") == {1: (2, 0), 3: (2, 2)}
    assert rows(model, "by_worker", "w1") == {1: (1, 0), 2: (3, 2)}


def test_levels_past_the_maximum_share_one_bucket() -> None:
    model = fold([outcome(f"j{n}", 1, Kind.FAILED, n, n) for n in range(1, 8)], max_level=4)
    assert rows(model, "by_worker", "w1") == {1: (1, 1), 2: (1, 1), 3: (1, 1), 4: (4, 4)}
    curve = concurrency_curve(model.by_worker["w1"], model.max_level)
    assert [p.label for p in curve.points] == ["1", "2", "3", "4+"]


def test_the_curve_has_rates_intervals_and_the_baseline_of_attempts_that_ran_alone() -> None:
    model = fold(
        [outcome(f"a{n}", 1, Kind.FAILED if n < 2 else Kind.COMPLETED, 1, 1) for n in range(20)]
        + [outcome(f"b{n}", 1, Kind.FAILED if n < 10 else Kind.COMPLETED, 5, 5) for n in range(20)]
    )
    curve = concurrency_curve(model.by_job_name["resize-image"], model.max_level)
    assert curve.baseline is not None
    assert (curve.baseline.failure.hits, curve.baseline.failure.total) == (2, 20)
    top = curve.points[-1]
    assert (top.level, top.failure.rate) == (5, 0.5)
    assert top.failure.interval is not None and curve.baseline.failure.interval is not None
    assert top.failure.interval[0] > curve.baseline.failure.rate  # type: ignore[operator]
    assert (curve.overall.hits, curve.overall.total) == (12, 40)


kinds = st.sampled_from(list(AttemptOutcomeType))
levels = st.integers(1, 40)
outcomes = st.lists(
    st.builds(outcome, st.sampled_from("abcdef"), st.integers(1, 4), kinds, levels, levels),
    max_size=40,
)


@settings(max_examples=200)
@given(outcomes, st.randoms())
def test_a_replay_with_repeats_in_any_order_gives_the_same_model(
    log: list[AttemptOutcome], rng: random.Random
) -> None:
    # The processors emit one outcome per (job, attempt); after a crash some come again.
    distinct = list({(o.job_id, o.attempt): o for o in log}.values())
    replayed = distinct + rng.sample(distinct, len(distinct) // 2)
    rng.shuffle(replayed)
    assert fold(replayed) == fold(distinct)


def test_on_the_demo_failures_rise_with_a_workers_load() -> None:
    # The demo's failure chance grows with the load of the worker an attempt runs on.
    events = list(Workload(WorkloadConfig(jobs=3000), seed=3).events())
    model = fold(recompute(events).values())
    totals: dict[int, list[int]] = {}
    for levels in model.by_worker.values():
        for level, counts in levels.items():
            pair = totals.setdefault(level, [0, 0])
            pair[0] += counts.failures
            pair[1] += counts.attempts
    rate = {level: failures / attempts for level, (failures, attempts) in totals.items()}
    low = min(rate)
    high = max(level for level, (_, attempts) in totals.items() if attempts >= 200)
    assert rate[high] > rate[low] * 1.5, rate
