"""No mutation any event can produce touches a job document's immutable fields."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.couchbase_docs import IMMUTABLE_PATHS, Mutation, plan_job, view_from_document
from projections.model import Position, ReadModel
from schemas.job_event import JobEvent
from tests.factories import events as any_event


def apply(document: dict[str, Any], mutations: tuple[Mutation, ...]) -> dict[str, Any]:
    """Sub-document semantics, on a dict: what the server would do."""
    result = copy.deepcopy(document)
    for m in mutations:
        *parents, leaf = m.path.split(".")
        node = result
        for part in parents:
            node = node.setdefault(part, {})
        if m.op == "append":
            node.setdefault(leaf, []).extend(m.value)
        elif m.op == "increment":
            node[leaf] = node.get(leaf, 0) + m.value
        else:
            node[leaf] = m.value
    return result


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
    for position, event in items:
        model.apply(event, position)
    assert view_from_document(document) == model.jobs["job-1"]
    assert len(document["history"]) == len(events) == document["counters"]["events"]


@given(one_job)
def test_replayed_events_plan_nothing(events: list[JobEvent]) -> None:
    items = [(Position("t", 0, offset), event) for offset, event in enumerate(events)]
    document = plan_job(None, items).create
    replay = plan_job(document, items)
    assert replay.mutations == () and replay.create is None
    assert (replay.applied, replay.duplicates) == (0, len(items))
