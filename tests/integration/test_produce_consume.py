"""The SDK against a real broker: everything sent comes back, exactly, in per-job order."""

from __future__ import annotations

from collections import defaultdict

from schemas.codec import SingleObjectCodec
from schemas.job_event import JobEvent
from streams.demo.workload import Workload, WorkloadConfig
from streams.producer import SCHEMA_HEADER, TYPE_HEADER, JobEventProducer
from streams.reader import read_messages
from streams.settings import KafkaSettings
from tests.conftest import catalog_of

N = 30_000


def test_every_event_comes_back_exactly_once_in_per_job_order(kafka: KafkaSettings) -> None:
    sent = list(Workload(WorkloadConfig(jobs=None, events=N), seed=5).events())
    with JobEventProducer(kafka) as producer:
        assert producer.send_all(sent) == N
    assert producer.sent == N and producer.failed == 0

    topic = catalog_of(kafka).job_events.name
    codec = SingleObjectCodec()
    received: list[JobEvent] = []
    partitions: dict[str, set[int]] = defaultdict(set)
    for message in read_messages(kafka, topic, idle_s=5, max_messages=N + 1):
        event = codec.decode(message.value() or b"")
        assert message.key() == event.job_id.encode()
        headers = dict(message.headers() or [])
        assert headers[TYPE_HEADER] == event.type.value.encode()
        assert headers[SCHEMA_HEADER] == codec.schema_label.encode()
        partitions[event.job_id].add(message.partition() or 0)
        received.append(event)

    assert len(received) == N  # nothing lost, nothing duplicated ...
    assert sorted(e.event_id for e in received) == sorted(e.event_id for e in sent)
    assert {e.event_id: e for e in received} == {e.event_id: e for e in sent}  # ... content equal
    assert all(len(p) == 1 for p in partitions.values())  # one partition per job
    assert len({p for ps in partitions.values() for p in ps}) == kafka.partitions

    def per_job(events: list[JobEvent]) -> dict[str, list[str]]:
        order: dict[str, list[str]] = defaultdict(list)
        for event in events:
            order[event.job_id].append(event.event_id)
        return order

    assert per_job(received) == per_job(sent)
