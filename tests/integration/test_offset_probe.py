"""What lies in a gap of offsets, asked of a real broker (`processors.offset_probe`): commit and
abort markers take offsets, an aborted transaction's records are skipped reading committed, and
an open transaction's records lie past the last stable offset (a partition with one open is not
caught up)."""

from __future__ import annotations

import asyncio

from confluent_kafka import Producer

from processors.offset_probe import OffsetProbe, Readable
from streams.kafka_config import common_config
from streams.settings import KafkaSettings
from tests.conftest import catalog_of


def test_the_probe_tells_markers_and_aborted_records_from_readable_ones(
    kafka: KafkaSettings,
) -> None:
    topic = catalog_of(kafka).job_events.name
    producer = Producer({**common_config(kafka, "producer"), "transactional.id": topic})
    producer.init_transactions(15)

    def transaction(values: list[bytes], *, commit: bool) -> None:
        producer.begin_transaction()
        for value in values:
            producer.produce(topic, value, partition=0)
        producer.flush(15)
        if commit:
            producer.commit_transaction(15)
        else:
            producer.abort_transaction(15)

    transaction([b"a", b"b"], commit=True)  # 0, 1; marker 2
    transaction([b"aborted"], commit=False)  # 3; marker 4
    transaction([b"c"], commit=True)  # 5; marker 6
    producer.begin_transaction()
    producer.produce(topic, b"open", partition=0)  # 7, not committed yet
    producer.flush(15)
    committed = OffsetProbe(kafka, "probe-test", read_committed=True)
    uncommitted = OffsetProbe(kafka, "probe-test", read_committed=False)
    try:
        assert committed.first_readable(topic, 0, 0) == Readable(0)
        assert committed.first_readable(topic, 0, 2) == Readable(5)  # marker, aborted, marker
        assert committed.first_readable(topic, 0, 6) == Readable(7, end=True)  # last stable
        assert not asyncio.run(committed.caught_up_async(topic, 0, 6))  # a transaction is open
        assert uncommitted.first_readable(topic, 0, 2) == Readable(3)  # the aborted record
        assert uncommitted.first_readable(topic, 0, 8) == Readable(8, end=True)
        assert committed.first_readable(topic, 1, 0) == Readable(0, end=True)  # empty
        producer.commit_transaction(15)  # 7; marker 8
        assert committed.first_readable(topic, 0, 6) == Readable(7)
        assert committed.first_readable(topic, 0, 8) == Readable(9, end=True)
        assert asyncio.run(committed.caught_up_async(topic, 0, 8))  # only a marker left
        assert not asyncio.run(committed.caught_up_async(topic, 0, 5))
    finally:
        committed.close()
        uncommitted.close()
