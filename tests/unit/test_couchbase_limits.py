"""plan_job and the key function stay within Couchbase Server's limits for any events: at most 16
specs per call, keys of at most 250 bytes, documents far below 20 MB, strict JSON; a split update
interrupted between any two calls ends as if it had been one; errors are classified."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from couchbase.exceptions import (
    AmbiguousTimeoutException,
    CouchbaseException,
    DocumentLockedException,
    InvalidArgumentException,
    InvalidValueException,
    PathTooDeepException,
    RequestCanceledException,
    ServiceUnavailableException,
    TemporaryFailException,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.validation import MAX_ID_BYTES, MAX_NAME_BYTES, MAX_PAYLOAD_BYTES
from projections.couchbase_docs import (
    HISTORY_LIMIT,
    JobPlan,
    apply_mutations,
    plan_calls,
    plan_job,
    view_from_document,
)
from projections.couchbase_errors import DEAD_LETTER_LIMIT, add_dead_letters, refusal_reason
from projections.couchbase_limits import (
    DOCUMENT_LIMIT,
    KEY_LIMIT,
    SPEC_LIMIT,
    document_key,
    parse_strict_json,
    strict_json,
)
from projections.model import EVENT_ID_WINDOW, Position, ReadModel
from schemas.job_event import JobError, JobEvent, JobEventType
from tests.factories import events as any_event

Run = list[tuple[Position, JobEvent]]

one_job = st.lists(
    any_event.map(lambda e: replace(e, job_id="job-1"))
    | st.floats().map(lambda p: replace(_base(), progress=p, type=JobEventType.PROGRESS)),
    min_size=1,
    max_size=30,
)


def _base() -> JobEvent:
    return JobEvent(
        event_id="e", job_id="job-1", job_name="n", type=JobEventType.ACTIVE, attempt=1,
        occurred_at=datetime(2026, 1, 1, tzinfo=datetime.now().astimezone().tzinfo),
    )  # fmt: skip


def positioned(events: list[JobEvent]) -> Run:
    return [(Position("t", 0, offset), event) for offset, event in enumerate(events)]


def fold(
    events: list[JobEvent], cuts: list[int], limit: int = SPEC_LIMIT, crash_after: int = -1
) -> dict[str, Any]:
    """The job document after applying `events` in batches cut at `cuts`; with `crash_after`,
    every split update stops after that many calls once, as a crashed writer would."""
    items = positioned(events)
    bounds = sorted({0, *(c % len(items) for c in cuts), len(items)})
    document: dict[str, Any] | None = None
    for start, end in itertools.pairwise(bounds):
        crashed = False
        while True:
            plan = plan_job(document, items[start:end], spec_limit=limit)
            if plan.create is not None:
                document = plan.create
                break
            assert document is not None
            calls = plan_calls(plan, limit)
            assert all(len(call) <= limit for call in calls)
            if len(calls) > 1 and crash_after >= 0 and not crashed and not plan.finishes_pending:
                crashed = True
                for call in calls[: crash_after + 1]:
                    document = apply_mutations(document, call)
                continue  # the retried batch plans again, over the half-applied document
            for call in calls:
                document = apply_mutations(document, call)
            if not plan.finishes_pending:
                break
    assert document is not None
    return document


@settings(max_examples=300)
@given(one_job, st.lists(st.integers(0, 60), max_size=6))
def test_every_update_is_one_call_of_at_most_16_specs(
    events: list[JobEvent], cuts: list[int]
) -> None:
    items = positioned(events)
    bounds = sorted({0, *(c % len(items) for c in cuts), len(items)})
    document: dict[str, Any] | None = None
    for start, end in itertools.pairwise(bounds):
        plan = plan_job(document, items[start:end])
        if plan.create is not None:
            document = plan.create
            continue
        assert document is not None
        assert len(plan.mutations) <= SPEC_LIMIT
        assert len(plan_calls(plan)) == 1
        document = apply_mutations(document, plan.mutations)


@settings(max_examples=300)
@given(
    one_job,
    st.lists(st.integers(0, 60), max_size=6),
    st.integers(3, 6),
    st.integers(0, 4),
)
def test_a_split_update_crashed_between_calls_ends_as_one_update(
    events: list[JobEvent], cuts: list[int], limit: int, crash_after: int
) -> None:
    whole = fold(events, cuts)
    assert fold(events, cuts, limit) == whole
    crashed = fold(events, cuts, limit, crash_after)
    assert "pending" not in crashed
    assert crashed == whole
    model = ReadModel()
    for position, event in positioned(events):
        model.apply(event, position)
    assert view_from_document(crashed) == model.jobs["job-1"]


@settings(max_examples=300)
@given(one_job)
def test_documents_and_mutations_are_strict_json(events: list[JobEvent]) -> None:
    items = positioned(events)
    created = plan_job(None, items[:1]).create
    assert created is not None
    parse_strict_json(strict_json(created))
    plan = plan_job(created, items[1:], spec_limit=3)
    for mutation in plan.mutations:
        parse_strict_json(strict_json(mutation.value))  # NaN and Infinity progress included


@settings(max_examples=500)
@given(st.text(max_size=40), st.text(min_size=1, max_size=400), st.text(min_size=1, max_size=400))
def test_keys_fit_in_250_bytes_and_stay_distinct(namespace: str, a: str, b: str) -> None:
    a, b = "job::" + a, "job::" + b
    key_a, key_b = document_key(namespace, a), document_key(namespace, b)
    assert len(key_a.encode("utf-8", "surrogatepass")) <= KEY_LIMIT
    assert key_a == document_key(namespace, a)  # writers and readers agree
    assert (key_a == key_b) == (a == b)
    if len((namespace + a).encode("utf-8", "surrogatepass")) <= KEY_LIMIT:
        assert key_a == namespace + a  # short keys stay as they were


def worst_event(index: int) -> JobEvent:
    """An event with every field at the contract's limits, made of characters JSON escapes to
    six bytes (the largest document the fold can build)."""

    def text(n: int) -> str:
        return "\x01" * n

    return JobEvent(
        event_id=f"{index:08d}" + text(MAX_ID_BYTES - 8),
        job_id="job-1",
        job_name=text(MAX_NAME_BYTES),
        type=[JobEventType.QUEUED, JobEventType.ACTIVE, JobEventType.FAILED][min(index, 2)],
        attempt=index + 1,
        occurred_at=datetime(2026, 1, 1).astimezone() + timedelta(seconds=index),
        queue=text(MAX_NAME_BYTES),
        worker=text(MAX_NAME_BYTES),
        data=text(MAX_PAYLOAD_BYTES),
        progress=1e308,
        error=JobError(text(MAX_NAME_BYTES), "m" * 100, None),
        will_retry=True,
    )  # fmt: skip


def test_a_job_document_stays_far_below_20_mb_however_many_events() -> None:
    events = [worst_event(i) for i in range(3 * HISTORY_LIMIT + EVENT_ID_WINDOW)]
    document = fold(events, list(range(0, len(events), 7)))
    assert len(document["history"]) == HISTORY_LIMIT
    assert document["counters"]["history_dropped"] == len(events) - HISTORY_LIMIT
    assert document["counters"]["events"] == len(events)
    assert len(document["recent_event_ids"]) == EVENT_ID_WINDOW
    size = len(strict_json(document))
    # With an intent (a split update) the document holds its values twice, at most.
    assert 2 * size < DOCUMENT_LIMIT / 4, size


def test_replays_of_a_finished_intent_plan_nothing() -> None:
    events = [worst_event(i) for i in range(5)]
    document = fold(events, [2], limit=3, crash_after=0)
    replay = plan_job(document, positioned(events))
    assert replay == JobPlan(None, (), 0, len(events))


def test_transient_errors_are_not_refusals_and_permanent_ones_are_named() -> None:
    transient = [AmbiguousTimeoutException(), RequestCanceledException(), TemporaryFailException(),
                 ServiceUnavailableException(), DocumentLockedException()]  # fmt: skip
    assert [refusal_reason(e) for e in transient] == [None] * len(transient)
    assert refusal_reason(InvalidValueException()) == "not_strict_json"
    assert refusal_reason(PathTooDeepException()) == "too_deep"
    assert refusal_reason(InvalidArgumentException()) == "invalid_argument"
    assert refusal_reason(CouchbaseException()) is None  # unknown: a fault, retried


def test_dead_letters_are_bounded_and_idempotent() -> None:
    letters = {f"s@{i}": {"reason": "too_large", "offset": i} for i in range(DEAD_LETTER_LIMIT + 5)}
    document, added = add_dead_letters(None, letters)
    assert len(document["letters"]) == DEAD_LETTER_LIMIT and document["dropped"] == 5
    assert len(added) == DEAD_LETTER_LIMIT + 5
    again, added = add_dead_letters(document, dict(list(letters.items())[:10]))
    assert again == document and added == []
