"""The demo workload: deterministic, and every lifecycle it emits is a valid one."""

from __future__ import annotations

from collections import defaultdict

import pytest

from schemas.codec import SingleObjectCodec
from schemas.job_event import JobEvent, JobEventType
from streams.demo.errors import FAMILIES, draw_error
from streams.demo.workload import TEMPLATE_ATTRIBUTE, Workload, WorkloadConfig

T = JobEventType


@pytest.fixture(scope="module")
def events() -> list[JobEvent]:
    return list(Workload(WorkloadConfig(jobs=3000), seed=11).events())


def test_same_seed_same_events_other_seed_other_events(events: list[JobEvent]) -> None:
    again = list(Workload(WorkloadConfig(jobs=3000), seed=11).events())
    assert again == events
    other = list(Workload(WorkloadConfig(jobs=3000), seed=12).events())
    assert other != events


def test_events_are_in_event_time_order_and_encode(events: list[JobEvent]) -> None:
    times = [e.occurred_at for e in events]
    assert times == sorted(times)
    codec = SingleObjectCodec()
    assert all(codec.decode(codec.encode(e)) == e for e in events[:2000])


def test_every_job_runs_to_a_valid_end(events: list[JobEvent]) -> None:
    by_job: dict[str, list[JobEvent]] = defaultdict(list)
    for event in events:
        by_job[event.job_id].append(event)
    assert len(by_job) == 3000
    for history in by_job.values():
        assert history[0].type is T.QUEUED and history[0].data
        assert all(e.data is None for e in history[1:])  # input data only at creation
        attempt = 0
        open_attempt = False
        for event in history[1:]:
            if event.type is T.ACTIVE:
                assert not open_attempt
                attempt += 1
                open_attempt = True
                assert event.attempt == attempt
            else:
                assert open_attempt and event.attempt == attempt
                if event.type.ends_attempt:
                    open_attempt = False
        assert not open_attempt
        last = history[-1]
        assert last.type in {T.COMPLETED, T.FAILED, T.CANCELLED, T.STALLED}
        assert attempt <= (last.max_attempts or 0)
        if last.type is T.FAILED:
            assert last.will_retry is False  # a job's last failure is terminal


def test_worker_concurrency_never_exceeds_its_slots(events: list[JobEvent]) -> None:
    running: dict[str, int] = defaultdict(int)
    peak = 0
    for event in events:
        if event.type is T.ACTIVE:
            running[event.worker or ""] += 1
            peak = max(peak, running[event.worker or ""])
        elif event.type.ends_attempt:
            running[event.worker or ""] -= 1
    assert peak == WorkloadConfig().slots  # busy, but never over


def test_the_mix_has_everything_a_job_system_shows(events: list[JobEvent]) -> None:
    kinds = {e.type for e in events}
    assert kinds == set(JobEventType)
    names = {e.job_name for e in events}
    assert len(names) == 8
    failures = [e for e in events if e.type is T.FAILED]
    assert any(e.will_retry for e in failures) and any(e.will_retry is False for e in failures)
    templates = {e.attributes[TEMPLATE_ATTRIBUTE] for e in failures}
    assert len(templates) > 50
    # variable parts vary: far more distinct messages than templates
    assert len({e.error.message for e in failures if e.error}) > 3 * len(templates)


def test_event_limit_stops_mid_stream() -> None:
    assert len(list(Workload(WorkloadConfig(jobs=None, events=777)).events())) == 777


def test_every_family_renders_every_variant() -> None:
    import random

    rng = random.Random(3)
    for family in FAMILIES:
        for variant in family.variants:
            assert family.render(rng, variant) != family.render(rng, variant)
    sample = draw_error(rng, "send-email")
    assert sample.template_id.split("/")[0] in {f.name for f in FAMILIES}
