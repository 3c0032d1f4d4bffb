"""No mutation any event can produce touches a job document's immutable fields."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.couchbase_docs import (
    IMMUTABLE_PATHS,
    plan_job,
    view_from_document,
)
from projections.couchbase_docs import apply_mutations as apply
from projections.model import Position, ReadModel
from schemas.job_event import JobEvent
from tests.factories import events as any_event

one_job = st.lists(any_event, min_size=1, max_size=12).map(
    lambda events: [
        JobEvent(**{**{n: getattr(e, n) for n in e.__slots__}, "job_id": "job-1"})  # type: ignore[attr-defined]
        for e in events
    ]
)


@settings(max_examples=300)
@given(one_job, st.integers(1, 11))
def test_no_mutation_touches_an_immutable_path(events: list[JobEvent], split: int) -> None:
    items = [(Position("t", 0, offset), event) for offset, event in enumerate(events)]
    created = plan_job(None, items[:split])
    assert created.create is not None
    document = created.create
    frozen = {path: document.get(path) for path in IMMUTABLE_PATHS}
    for start in range(split, len(items), 3):
        plan = plan_job(document, items[start : start + 3])
        for mutation in plan.mutations:
            root = mutation.path.split(".")[0]
            assert root not in IMMUTABLE_PATHS, mutation
        document = apply(document, plan.mutations)
        assert {path: document.get(path) for path in IMMUTABLE_PATHS} == frozen


@settings(max_examples=200)
@given(one_job)
def test_the_document_agrees_with_the_reference_fold(events: list[JobEvent]) -> None:
    items = [(Position("t", 0, offset), event) for offset, event in enumerate(events)]
    document = plan_job(None, items[:1]).create
    assert document is not None
    for start in range(1, len(items), 2):
        document = apply(document, plan_job(document, items[start : start + 2]).mutations)
    model = ReadModel()
    taken = sum(model.apply(event, position) for position, event in items)
    assert view_from_document(document) == model.jobs["job-1"]
    # Re-sent event_ids (hypothesis draws equal ones) take no effect and leave no history.
    assert len(document["history"]) == taken == document["counters"]["events"]


@given(one_job)
def test_replayed_events_plan_nothing(events: list[JobEvent]) -> None:
    items = [(Position("t", 0, offset), event) for offset, event in enumerate(events)]
    document = plan_job(None, items).create
    replay = plan_job(document, items)
    assert replay.mutations == () and replay.create is None
    assert (replay.applied, replay.duplicates) == (0, len(items))
