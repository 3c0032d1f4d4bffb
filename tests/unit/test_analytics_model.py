"""The analytics model: a pure fold over job events, attempt outcomes and error vectors.

Each aggregate is checked against a computation that does not share its code: the job read model
(projections/model.py) for jobs by state and error counts, the processors' recomputation of
outcomes for concurrency, plain Python over the distinct events for waiting and run times.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

from processors.fingerprint import fingerprint
from processors.outcomes import recompute
from projections.analytics import histogram
from projections.analytics.model import (
    HOUR_MS,
    HOURS_KEPT,
    LATEST_JOBS,
    AnalyticsModel,
    AnalyticsRecord,
    fold,
    queue_key,
    split_queue_key,
)
from projections.model import Position, ReadModel
from schemas.derived import ErrorVector
from schemas.job_event import JobError, JobEvent, JobEventType, millis
from streams.demo.workload import Workload, WorkloadConfig
from tests.factories import make_event, positioned

Item = tuple[Position, AnalyticsRecord | None]


def demo_log(jobs: int = 1500, seed: int = 5) -> tuple[list[JobEvent], list[Item]]:
    events = list(Workload(WorkloadConfig(jobs=jobs), seed=seed).events())
    items: list[Item] = list(positioned(events))
    outcomes = sorted(recompute(events).values(), key=lambda o: (o.ended_at_ms, o.job_id))
    items += [(Position("t.attempt-outcomes", 0, n), o) for n, o in enumerate(outcomes)]
    return events, items


def interleaved(items: list[Item], rng: random.Random) -> list[Item]:
    """The same records, each source partition in its own order, partitions mixed at random."""
    queues: dict[str, list[Item]] = {}
    for item in items:
        queues.setdefault(item[0].source, []).append(item)
    mixed: list[Item] = []
    while queues:
        source = rng.choice(sorted(queues))
        mixed.append(queues[source].pop(0))
        if not queues[source]:
            del queues[source]
    return mixed


def test_jobs_by_state_and_error_counts_agree_with_the_job_read_model() -> None:
    events, items = demo_log()
    model = fold(items)
    reference = ReadModel()
    for position, record in items:
        if isinstance(record, JobEvent):
            reference.apply(record, position)
    reference.normalized()
    per_name: dict[str, Counter[str]] = {}
    for key, stats in model.queues.items():
        _, name = split_queue_key(key)
        per_name.setdefault(name, Counter()).update(stats.states)
    assert per_name == {name: view.counts for name, view in reference.names.items()}
    assert {fp: s.count for fp, s in model.errors.items()} == {
        fp: v.count for fp, v in reference.fingerprints.items()
    }
    for fp, view in reference.fingerprints.items():
        error = model.errors[fp]
        assert (error.template, error.first_seen, error.last_seen) == (
            view.template,
            view.first_seen,
            view.last_seen,
        )
    assert model.progress_ms == max(millis(e.occurred_at) for e in events)


def test_waiting_and_run_times_match_a_direct_computation() -> None:
    events, items = demo_log(jobs=800)
    model = fold(items)
    queued: dict[str, int] = {}
    started: dict[str, int] = {}
    waits: dict[str, list[int]] = {}
    runs: dict[str, list[int]] = {}
    for event in events:
        at, key = millis(event.occurred_at), queue_key(event.queue or "", event.job_name)
        if event.type is JobEventType.QUEUED:
            queued[event.job_id] = at
        elif event.type is JobEventType.ACTIVE:
            if event.attempt == 1:
                waits.setdefault(key, []).append(at - queued[event.job_id])
            started[event.job_id] = at
        elif event.type in (JobEventType.COMPLETED, JobEventType.FAILED):
            runs.setdefault(key, []).append(at - started.pop(event.job_id))
        elif event.type.ends_attempt:
            started.pop(event.job_id, None)
    for key, stats in model.queues.items():
        for samples, hist in (
            (waits.get(key, []), stats.waiting),
            (runs.get(key, []), stats.running),
        ):
            assert sum(hist.values()) == len(samples)
            if samples:
                exact = sorted(samples)[max(0, -(-99 * len(samples) // 100) - 1)]
                estimate = histogram.quantile_ms(hist, 0.99)
                assert estimate is not None
                assert exact <= estimate <= max(exact * 1.1, exact + 1), (key, exact, estimate)


def test_concurrency_counts_each_attempt_once_as_the_outcomes_say() -> None:
    events, items = demo_log(jobs=800)
    outcomes = recompute(events).values()
    model = fold(
        items + [(Position("t.attempt-outcomes", 1, n), o) for n, o in enumerate(outcomes)]
    )  # fmt: skip  (the same outcomes emitted again)
    expected: dict[str, Counter[tuple[int, bool]]] = {}
    for o in outcomes:
        if o.outcome.value != "CANCELLED":
            level = min(o.concurrent_for_job_name, model.max_level)
            expected.setdefault(o.job_name, Counter())[(level, o.outcome.value != "COMPLETED")] += 1
    got: dict[str, Counter[tuple[int, bool]]] = {}
    for name, levels in model.concurrency.by_job_name.items():
        for lvl, counts in levels.items():
            got.setdefault(name, Counter())[(lvl, False)] += counts.attempts - counts.failures
            got[name][(lvl, True)] += counts.failures
    assert {n: +c for n, c in got.items()} == expected


def test_any_interleaving_of_partitions_and_any_repeat_gives_the_same_model() -> None:
    _, items = demo_log(jobs=600)
    rng = random.Random(11)
    once = fold(items)
    redelivered = items[:500] + items  # a redelivered head: the offset guard skips it
    assert fold(interleaved(redelivered, rng)) == once
    assert fold(interleaved(items, random.Random(12))) == once


def test_a_resent_event_counts_once() -> None:
    _, items = demo_log(jobs=300)
    failures = [(p, r) for p, r in items if isinstance(r, JobEvent) and r.error is not None]
    resent: list[Item] = [
        (Position("t.job-events", 99, n), r) for n, (_, r) in enumerate(failures[:40])
    ]
    skipped: list[Item] = [(p, None) for p, _ in resent]
    assert fold(items + resent) == fold(items + skipped)


def test_errors_keep_a_sample_the_job_names_and_the_latest_distinct_jobs() -> None:
    error = JobError(type="TimeoutError", message="timed out after 30000 ms", stack=None)
    start = make_event().occurred_at
    items: list[Item] = []
    for n in range(LATEST_JOBS + 5):
        failed = make_event(
            event_id=f"e{n}", job_id=f"job-{n:02}", job_name="a" if n % 2 else "b",
            type=JobEventType.FAILED, attempt=1, will_retry=False, error=error,
            occurred_at=start + timedelta(seconds=n),
        )  # fmt: skip
        items.append((Position("t.job-events", n % 3, n), failed))
    model = fold(items)
    ((fp, stats),) = model.errors.items()
    assert fp == fingerprint(error).sha256
    assert stats.count == LATEST_JOBS + 5
    assert stats.sample == "timed out after 30000 ms" and stats.sample_job == "job-00"
    assert stats.job_names == {"a": 7, "b": 8}
    assert sorted(stats.latest_jobs) == [f"job-{n:02}" for n in range(5, LATEST_JOBS + 5)]


def test_errors_count_occurrences_per_hour_for_the_last_week_in_any_order() -> None:
    error = JobError(type="OSError", message="disk on fire", stack=None)
    start = make_event().occurred_at
    # One occurrence every 5 hours over 12 days: the last 168 hours are kept, whole.
    hits = [start + timedelta(hours=5 * n, minutes=n) for n in range(58)]
    items: list[Item] = [
        (Position("t.job-events", n % 3, n),
         make_event(event_id=f"e{n}", job_id=f"job-{n}", type=JobEventType.FAILED, attempt=1,
                    will_retry=False, error=error, occurred_at=at))
        for n, at in enumerate(hits)
    ]  # fmt: skip
    latest = max(millis(at) - millis(at) % HOUR_MS for at in hits)
    expected = Counter(
        millis(at) - millis(at) % HOUR_MS for at in hits
        if millis(at) - millis(at) % HOUR_MS > latest - HOURS_KEPT * HOUR_MS
    )  # fmt: skip
    for seed in range(5):
        ordered = interleaved(items, random.Random(seed)) if seed else items
        ((_, stats),) = fold(ordered).errors.items()
        assert stats.hours == expected
        assert stats.count == len(hits)


def test_vectors_are_kept_per_model_and_open_jobs_leave_when_they_end() -> None:
    queued = make_event(event_id="q", job_id="j1", type=JobEventType.QUEUED, attempt=1)
    active = make_event(event_id="a", job_id="j1", type=JobEventType.ACTIVE, attempt=1,
                        occurred_at=queued.occurred_at + timedelta(seconds=5))  # fmt: skip
    done = make_event(event_id="c", job_id="j1", type=JobEventType.COMPLETED, attempt=1,
                      occurred_at=queued.occurred_at + timedelta(seconds=9))  # fmt: skip
    model = AnalyticsModel()
    model.apply(queued, Position("t.job-events", 0, 0))
    assert set(model.open_jobs()) == {"j1"}
    model.apply(active, Position("t.job-events", 0, 1))
    assert model.open_jobs()["j1"].since == millis(active.occurred_at)
    model.apply(done, Position("t.job-events", 0, 2))
    assert model.open_jobs() == {}
    model.apply(ErrorVector("f" * 64, "m1", (0.5, 0.25)), Position("t.error-vectors", 0, 0))
    model.apply(ErrorVector("f" * 64, "m2", (1.0,)), Position("t.error-vectors", 0, 1))
    assert model.errors["f" * 64].models == {"m1": 2, "m2": 1}
    assert model.vectors[("f" * 64, "m1")] == (0.5, 0.25)
    assert model.errors["f" * 64].count == 0  # known from its vector only, so far


def test_histogram_quantiles_stay_within_ten_percent() -> None:
    rng = random.Random(3)
    samples = [int(rng.lognormvariate(7, 1.5)) for _ in range(5000)]
    hist: histogram.Histogram = {}
    for sample in samples:
        histogram.add(hist, sample)
    ordered = sorted(samples)
    for q in (0.5, 0.95, 0.99):
        exact = ordered[max(0, -(-int(q * 100) * len(samples) // 100) - 1)]
        estimate = histogram.quantile_ms(hist, q)
        assert estimate is not None and exact <= estimate <= max(exact * 1.1, exact + 1)
    assert histogram.quantile_ms({}, 0.5) is None
    assert len(hist) < 200  # bounded by the scale, not the sample count
