"""Malformed messages go to the DLQ with their reason; the partition keeps moving."""

from __future__ import annotations

from confluent_kafka import Message, Producer

from jobtrail.errors import SchemaError
from schemas.codec import SingleObjectCodec
from schemas.job_event import JobEvent
from streams.consumer import BatchConsumer
from streams.demo.workload import Workload, WorkloadConfig
from streams.dlq import DeadLetter, DeadLetterWriter, read_dead_letter
from streams.kafka_config import producer_config
from streams.reader import read_messages
from streams.settings import KafkaSettings, ProducerSettings
from tests.conftest import catalog_of

POISON = [b"", b"not avro at all", b"\xc3\x01" + b"\x00" * 8 + b"\x02", b"\xc3\x01\xff"]


def test_poison_messages_are_dead_lettered_and_the_rest_flows(kafka: KafkaSettings) -> None:
    catalog = catalog_of(kafka)
    codec = SingleObjectCodec()
    good = list(Workload(WorkloadConfig(jobs=None, events=2000), seed=9).events())
    raw = Producer(producer_config(kafka, ProducerSettings()))
    # All on one job key: poison sits between good records of the same partition.
    for index, event in enumerate(good):
        raw.produce(catalog.job_events.name, codec.encode(event), b"job-shared")
        if index % 500 == 250:
            for poison in POISON:
                raw.produce(catalog.job_events.name, poison, b"job-shared")
    assert raw.flush(30) == 0

    decoded: list[JobEvent] = []
    dlq = DeadLetterWriter(raw, catalog.job_events_dlq.name)

    def handle(batch: list[Message]) -> None:
        for message in batch:
            try:
                decoded.append(codec.decode(message.value() or b""))
            except SchemaError as exc:
                dlq.write(DeadLetter.of(message, type(exc).__name__, str(exc)))
        assert raw.flush(30) == 0  # dead letters durable before the offsets are committed

    consumer = BatchConsumer(kafka, "test-dlq", [catalog.job_events.name], batch_size=300)
    consumer.start()
    try:
        consumer.run(handle, idle_stop_s=3)
    finally:
        consumer.close()

    assert decoded == good  # order kept, nothing lost around the poison
    letters = [
        read_dead_letter(m) for m in read_messages(kafka, catalog.job_events_dlq.name, idle_s=3)
    ]
    assert len(letters) == 4 * len(POISON)
    assert sorted({letter.value or b"" for letter in letters}) == sorted(set(POISON))
    assert {letter.reason for letter in letters} == {"CorruptMessageError", "UnknownSchemaError"}
    assert all(letter.topic == catalog.job_events.name and letter.offset >= 0 for letter in letters)
    assert dlq.counts["UnknownSchemaError"] == 4
