"""Offsets are committed only after the handler's effects; a failure redelivers the batch."""

from __future__ import annotations

from confluent_kafka import Message

from schemas.codec import SingleObjectCodec
from streams.consumer import BatchConsumer
from streams.demo.workload import Workload, WorkloadConfig
from streams.producer import JobEventProducer
from streams.settings import KafkaSettings
from tests.conftest import catalog_of

N = 3000


def produce(kafka: KafkaSettings) -> list[str]:
    events = list(Workload(WorkloadConfig(jobs=None, events=N), seed=3).events())
    with JobEventProducer(kafka) as producer:
        producer.send_all(events)
    return [e.event_id for e in events]


def test_a_failing_handler_gets_the_same_batch_again(kafka: KafkaSettings) -> None:
    sent = produce(kafka)
    topic = catalog_of(kafka).job_events.name
    codec = SingleObjectCodec()
    applied: list[str] = []
    failures = {"left": 3}

    def handle(batch: list[Message]) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("store is down")  # before any effect
        applied.extend(codec.decode(m.value() or b"").event_id for m in batch)

    consumer = BatchConsumer(kafka, "test-retry", [topic], batch_size=500)
    consumer.start()
    try:
        consumer.run(handle, idle_stop_s=3, on_error=lambda _exc: 0.1)
    finally:
        consumer.close()
    assert failures["left"] == 0
    assert sorted(applied) == sorted(sent)  # nothing lost, nothing applied twice


def test_uncommitted_work_is_redelivered_to_the_next_member(kafka: KafkaSettings) -> None:
    sent = produce(kafka)
    topic = catalog_of(kafka).job_events.name
    codec = SingleObjectCodec()

    first = BatchConsumer(kafka, "test-crash", [topic], batch_size=1000).start()
    committed: list[str] = []
    crashed_batch: list[str] = []
    try:
        while not committed:
            batch = first.poll_batch()
            if batch:
                committed.extend(codec.decode(m.value() or b"").event_id for m in batch)
                first.commit(batch)
        while not crashed_batch:  # processed, but the process "dies" before committing
            crashed_batch = [codec.decode(m.value() or b"").event_id for m in first.poll_batch()]
    finally:
        first.close()

    second = BatchConsumer(kafka, "test-crash", [topic], batch_size=1000).start()
    rest: list[str] = []
    try:
        second.run(
            lambda batch: rest.extend(codec.decode(m.value() or b"").event_id for m in batch),
            idle_stop_s=3,
        )
    finally:
        second.close()
    assert set(crashed_batch) <= set(rest)  # the uncommitted batch came again
    assert sorted(committed + rest) == sorted(sent)  # and the committed one did not
