"""Reading a topic outside any consumer group: `jobtrail tail`, replays and tests.

Assigns every partition explicitly (no group membership, no commits), from the oldest record or
from the live end, and stops after `idle_s` seconds without a record.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    Message,
    TopicPartition,
)

from streams.consumer import ConsumerError
from streams.kafka_config import consumer_config
from streams.metadata import fetch_metadata
from streams.settings import KafkaSettings


def read_messages(
    kafka: KafkaSettings,
    topic: str,
    *,
    from_beginning: bool = True,
    idle_s: float = 5.0,
    max_messages: int = 0,
) -> Iterator[Message]:
    """Yields the records of `topic` (errors skipped) until idle or `max_messages`."""
    consumer = Consumer(consumer_config(kafka, f"jobtrail-reader-{uuid.uuid4()}"))
    try:
        metadata = fetch_metadata(consumer, kafka, required=[topic])
        described = metadata.topics[topic]
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        consumer.assign([TopicPartition(topic, p, start) for p in sorted(described.partitions)])
        seen = 0
        last = time.monotonic()
        while idle_s <= 0 or time.monotonic() - last < idle_s:
            for message in consumer.consume(1000, 0.2):
                if message.error() is not None:
                    continue
                last = time.monotonic()
                yield message
                seen += 1
                if max_messages and seen >= max_messages:
                    return
    finally:
        consumer.close()


def read_to_end(kafka: KafkaSettings, topic: str, *, stall_s: float = 10.0) -> Iterator[Message]:
    """Yields every record of `topic` written before the call, then stops: no idle wait.

    The end is each partition's high watermark when the call starts; a partition is done once the
    consumer's position reaches it (a transaction's control record at the end is never delivered,
    so records alone would not tell). Raises ConsumerError when nothing moves for `stall_s`."""
    consumer = Consumer(consumer_config(kafka, f"jobtrail-reader-{uuid.uuid4()}"))
    try:
        metadata = fetch_metadata(consumer, kafka, required=[topic])
        ends: dict[int, int] = {}
        for partition in sorted(metadata.topics[topic].partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=kafka.connect_timeout_s
            )
            if high > low:
                ends[partition] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        left = dict(ends)
        moved = time.monotonic()
        while left:
            for message in consumer.consume(1000, 0.2):
                partition = message.partition() or 0
                if message.error() is None and (message.offset() or 0) < ends[partition]:
                    moved = time.monotonic()
                    yield message
            for tp in consumer.position([TopicPartition(topic, p) for p in left]):
                if tp.offset >= left[tp.partition]:
                    del left[tp.partition]
            if time.monotonic() - moved > stall_s:
                raise ConsumerError(f"reading {topic} stalled before its end: partitions {left}")
    finally:
        consumer.close()
