"""Error documents in Couchbase carry each model's vector (the seed's design): whether the vector
comes before or after the error's first occurrence, replayed or not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from processors.fingerprint import fingerprint
from projections.couchbase import CouchbaseItem, CouchbaseStore
from projections.couchbase_docs import vector_path
from projections.model import Position, ReadModel
from schemas.derived import ErrorVector
from schemas.job_event import JobError, JobEventType
from tests.factories import make_event
from tests.integration.stores import couchbase_store

TIMEOUT = JobError("TimeoutError", "timed out after 3000 ms", None)
REFUSED = JobError("ConnectionError", "connection refused by 10.0.0.7:5432", None)
SMALL, LARGE = "all-MiniLM-L6-v2", "sentence-transformers/text-embedding.v3"


@pytest.fixture
def store(couchbase_connstr: str) -> Iterator[CouchbaseStore]:
    opened = couchbase_store(couchbase_connstr)
    yield opened
    opened.drop(opened.current_generation())


def failed(n: int, error: JobError) -> CouchbaseItem:
    event = make_event(event_id=f"e{n}", job_id=f"job-{n}", type=JobEventType.FAILED,
                       attempt=1, will_retry=False, error=error)  # fmt: skip
    return Position("t.job-events", 0, n), event


def test_vectors_land_in_the_error_documents_in_any_order_and_a_replay_changes_nothing(
    store: CouchbaseStore,
) -> None:
    timeout, refused = fingerprint(TIMEOUT).sha256, fingerprint(REFUSED).sha256
    vectors = [
        ErrorVector(timeout, SMALL, (0.5, -0.25, 1.0)),  # before the error's first occurrence
        ErrorVector(refused, LARGE, (0.125, 2.0)),
        ErrorVector(timeout, LARGE, (4.0, 8.0)),
    ]
    items: list[CouchbaseItem] = [
        (Position("t.error-vectors", 0, 0), vectors[0]),
        failed(0, TIMEOUT),
        failed(1, REFUSED),
        failed(2, TIMEOUT),
        (Position("t.error-vectors", 0, 1), vectors[1]),
        (Position("t.error-vectors", 0, 2), vectors[2]),
    ]
    generation = store.current_generation()
    store.apply_batch(items[:1], generation)  # the vector creates the error document
    store.apply_batch(items[1:], generation)
    store.apply_batch(items, generation)  # a redelivery: nothing changes

    reference = ReadModel()
    for position, record in items:
        if not isinstance(record, ErrorVector) and record is not None:
            reference.apply(record, position)
    assert store.snapshot(generation).fingerprints == reference.fingerprints
    for vector in vectors:
        document = store.error_document(vector.fingerprint, generation)
        assert document is not None
        stored = document["vectors"][vector_path(vector.model).removeprefix("vectors.")]
        assert stored == {"model": vector.model, "dimension": vector.dimension,
                          "truncated": False, "vector": list(vector.vector)}  # fmt: skip
    document = store.error_document(timeout, generation)
    assert document is not None
    assert (document["template"], document["count"]) == (fingerprint(TIMEOUT).template, 2)
