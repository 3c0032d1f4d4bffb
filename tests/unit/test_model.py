"""The read model's fold: the specification every store is compared with."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from jobtrail.retry_curve import retry_curve
from projections.model import (
    EVENT_ID_WINDOW,
    Gap,
    JobState,
    Position,
    ReadModel,
    first_gap,
)
from schemas.job_event import JobError, JobEvent, JobEventType
from tests.factories import make_event

T = JobEventType


def lifecycle(job_id: str, *steps: tuple[JobEventType, dict[str, object]]) -> list[JobEvent]:
    base = make_event(job_id=job_id, error=None, will_retry=None, attempt=1)
    events = []
    for index, (kind, fields) in enumerate(steps):
        at = base.occurred_at + timedelta(seconds=index)
        events.append(
            make_event(
                **{
                    **_fields(base),
                    "event_id": f"{job_id}-{index}",
                    "type": kind,
                    "occurred_at": at,
                    **fields,
                }
            )
        )
    return events


def _fields(event: JobEvent) -> dict[str, object]:
    return {name: getattr(event, name) for name in event.__slots__}  # type: ignore[attr-defined]


def fold(events: list[JobEvent]) -> ReadModel:
    model = ReadModel()
    for offset, event in enumerate(events):
        model.apply(event, Position("t", 0, offset))
    return model.normalized()


ERROR = JobError("TimeoutError", "timed out after 3000 ms")


def test_a_job_that_fails_once_then_completes() -> None:
    events = lifecycle(
        "j1",
        (T.QUEUED, {"data": '{"x":1}'}),
        (T.ACTIVE, {"worker": "w1"}),
        (T.FAILED, {"error": ERROR, "will_retry": True, "worker": "w1"}),
        (T.ACTIVE, {"attempt": 2, "worker": "w2"}),
        (T.PROGRESS, {"attempt": 2, "progress": 50.0}),
        (T.COMPLETED, {"attempt": 2, "worker": "w2"}),
    )
    model = fold(events)
    job = model.jobs["j1"]
    assert job.state is JobState.COMPLETED
    assert (job.attempts, job.failures, job.worker, job.progress) == (2, 1, "w2", "50.0")
    assert job.data == '{"x":1}' and job.last_error_type == "TimeoutError"
    assert job.first_started_at is not None and job.first_started_at < (job.last_started_at or 0)
    name = model.names["send-email"]
    assert name.counts == Counter({"completed": 1})
    assert name.retries == Counter({"completed:1": 1})
    assert name.active == set()
    (fp,) = model.fingerprints.values()
    assert fp.count == 1 and fp.template == "TimeoutError: timed out after <duration>"


def test_states_move_between_counters_and_the_active_set() -> None:
    events = lifecycle("j2", (T.QUEUED, {}), (T.ACTIVE, {}))
    model = fold(events)
    assert model.names["send-email"].counts == Counter({"active": 1})
    assert model.names["send-email"].active == {"j2"}
    assert model.jobs["j2"].state is JobState.ACTIVE


def test_terminal_failure_and_retry_chances() -> None:
    events = lifecycle(
        "j3",
        (T.QUEUED, {}),
        (T.ACTIVE, {}),
        (T.FAILED, {"error": ERROR, "will_retry": True}),
        (T.ACTIVE, {"attempt": 2}),
        (T.FAILED, {"attempt": 2, "error": ERROR, "will_retry": False}),
    )
    events += lifecycle(
        "j4",
        (T.QUEUED, {}),
        (T.ACTIVE, {}),
        (T.FAILED, {"error": ERROR, "will_retry": True}),
        (T.ACTIVE, {"attempt": 2}),
        (T.COMPLETED, {"attempt": 2}),
    )
    model = fold(events)
    retries = model.names["send-email"].retries
    assert retries == Counter({"failed:2": 1, "completed:1": 1})
    chances = [point.chance.rate for point in retry_curve(retries).points]
    assert chances == [0.5, 0.5, 0.0]  # both failed once; one still completed
    assert model.fingerprints[next(iter(model.fingerprints))].count == 3


def test_redelivered_events_change_nothing() -> None:
    events = lifecycle("j5", (T.QUEUED, {}), (T.ACTIVE, {}), (T.COMPLETED, {}))
    model = ReadModel()
    for offset, event in enumerate(events):
        assert model.apply(event, Position("t", 0, offset))
    before = repr(model)
    for offset, event in enumerate(events):
        assert not model.apply(event, Position("t", 0, offset))
    assert repr(model) == before


def test_input_data_is_written_once_at_creation() -> None:
    events = lifecycle("j6", (T.QUEUED, {"data": "first"}), (T.QUEUED, {"data": "second"}))
    assert fold(events).jobs["j6"].data == "first"
    late = lifecycle("j7", (T.ACTIVE, {"data": "not an input"}))
    assert fold(late).jobs["j7"].data is None


def test_latest_invocation_ties_are_broken_by_job_id() -> None:
    a = lifecycle("job-a", (T.QUEUED, {"data": "a"}))
    b = lifecycle("job-b", (T.QUEUED, {"data": "b"}))
    assert fold(a + b).names["send-email"].latest == fold(b + a).names["send-email"].latest
    latest = fold(a + b).names["send-email"].latest
    assert latest is not None and latest.job_id == "job-b"


def test_a_resent_event_counts_once_and_only_moves_the_offset() -> None:
    events = lifecycle("j8", (T.QUEUED, {}), (T.ACTIVE, {}), (T.FAILED, {"error": ERROR}))
    model = ReadModel()
    for offset, event in enumerate(events):
        assert model.apply(event, Position("t", 0, offset))
    before = repr(model.jobs), repr(model.names), repr(model.fingerprints)
    assert not model.apply(events[2], Position("t", 0, 3))  # the same event_id, sent again
    assert not model.apply(events[0], Position("t", 0, 4))
    assert (repr(model.jobs), repr(model.names), repr(model.fingerprints)) == before
    assert model.offsets == {"t:0": 4}
    assert model.jobs["j8"].recent_event_ids == ["j8-0", "j8-1", "j8-2"]


def test_the_event_id_window_holds_a_jobs_last_128_events() -> None:
    steps: list[tuple[JobEventType, dict[str, object]]] = [(T.QUEUED, {})]
    steps += [(T.PROGRESS, {"progress": float(i)}) for i in range(130)]
    events = lifecycle("j9", *steps)
    model = fold(events)
    recent = model.jobs["j9"].recent_event_ids
    assert len(recent) == EVENT_ID_WINDOW and recent[-1] == "j9-130" and recent[0] == "j9-3"
    # a copy of an event still in the window is a duplicate; one that left it counts again
    assert not model.apply(events[3], Position("t", 0, 1000))
    assert model.apply(events[2], Position("t", 0, 1001))


def test_a_batch_must_follow_the_recorded_offset() -> None:
    p = [Position("t", 0, offset) for offset in range(10)]
    q = Position("t", 1, 5)
    assert first_gap({"t:0": 3}, p[4:]) is None  # follows
    assert first_gap({"t:0": 3}, p[2:]) is None  # a redelivery: no-ops until new records
    assert first_gap({}, p) is None
    assert first_gap({"t:0": 3}, p[6:]) == Gap("t:0", 3, 6)  # records 4 and 5 are missing
    assert first_gap({"t:0": 3}, [*p[4:], q]) == Gap("t:1", -1, 5)
    assert first_gap({"t:0": 3}, [*p[4:], q], {"t:1": 5}) is None  # the log starts at 5
    assert first_gap({"t:0": 3}, [*p[4:], q], {"t:1": 4}) == Gap("t:1", -1, 5)
