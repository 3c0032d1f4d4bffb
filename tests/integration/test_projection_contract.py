"""The projectors against the broker with re-sent events and events that break the contract:
copies count once, bad events are counted and skipped, the rest equals the fold."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from processors.validation import MAX_PAYLOAD_BYTES
from projections.memory import MemoryStore
from projections.model import ReadModel
from projections.ports import JobEventStore
from projections.projector import Projector
from projections.settings import ProjectorSettings
from schemas.job_event import JobEvent, JobEventType
from streams.demo.workload import Workload, WorkloadConfig
from streams.producer import JobEventProducer
from streams.settings import KafkaSettings
from tests.factories import make_event, positioned
from tests.integration.stores import store_of
from tests.integration.test_projection_pipeline import comparable


@pytest.fixture(params=["redis", "couchbase"])
def store(
    request: pytest.FixtureRequest, redis_url: str, couchbase_connstr: str
) -> Iterator[JobEventStore]:
    with store_of(request.param, redis_url, couchbase_connstr) as opened:
        yield opened


def distinct_fold(events: list[JobEvent]) -> ReadModel:
    memory = MemoryStore()
    memory.apply_batch(positioned(events), memory.current_generation())
    model = memory.snapshot(memory.current_generation())
    model.offsets = {}
    return model


def resent(events: list[JobEvent]) -> list[JobEvent]:
    """5% of `events` sent twice with the same event_id: half right after the original, half
    after all the others (much later in the log and in event time)."""
    out: list[JobEvent] = []
    late: list[JobEvent] = []
    for index, event in enumerate(events):
        out.append(event)
        if index % 20 == 0:
            (out if index % 40 == 0 else late).append(event)
    return out + late


def bad_events() -> list[JobEvent]:
    return [
        make_event(event_id="bad-1", job_id="bad-big", type=JobEventType.QUEUED, error=None,
                   will_retry=None, attempt=1, data="x" * (MAX_PAYLOAD_BYTES + 1)),
        make_event(event_id="bad-2", job_id="bad-2100", type=JobEventType.QUEUED, error=None,
                   will_retry=None, attempt=1, occurred_at=datetime(2100, 1, 1, tzinfo=UTC)),
        make_event(event_id="bad-3", job_id="bad-1999", type=JobEventType.QUEUED, error=None,
                   will_retry=None, attempt=1, occurred_at=datetime(1999, 1, 1, tzinfo=UTC)),
    ]  # fmt: skip


def test_resent_and_contract_breaking_events(kafka: KafkaSettings, store: JobEventStore) -> None:
    events = list(Workload(WorkloadConfig(jobs=None, events=10_000), seed=31).events())
    log = resent(events)
    log[len(log) // 2 : len(log) // 2] = bad_events()
    with JobEventProducer(kafka) as producer:
        producer.send_all(log)
    projector = Projector(store, kafka, ProjectorSettings(batch_size=500)).start()
    try:
        projector.run(idle_stop_s=3)
    finally:
        projector.close()
    stats = projector.stats
    assert stats.rejected == 3
    assert stats.applied == len(events) + 3  # each distinct event, and the skipped positions
    assert stats.duplicates == len(log) - len(events) - 3
    snapshot = store.snapshot(store.current_generation())
    assert sum(o + 1 for o in snapshot.offsets.values()) == len(log)
    snapshot.offsets = {}
    assert not {"bad-big", "bad-2100", "bad-1999"} & set(snapshot.jobs)
    assert snapshot == comparable(store, distinct_fold(events))
