"""Inspecting and replaying what the dead-letter topics hold (`jobtrail dlq`, /api/dead-letters).

A replay sends a dead letter's original key and bytes back to the topic it came from (named in its
headers), after the cause was fixed (a contract limit raised, a provider back): the bytes are
unchanged, so a replayed event keeps its event_id, and one replayed twice still counts once. A
letter whose value was truncated to fit the DLQ (header `jobtrail.dlq.truncated`) is not replayed:
its original is still in the source topic, at the offset the headers name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from confluent_kafka import Producer

from jobtrail.errors import DeliveryError
from streams.dlq import DeadLetter, read_dead_letter
from streams.kafka_config import producer_config
from streams.reader import read_to_end
from streams.settings import KafkaSettings, ProducerSettings
from streams.topics import topic_catalog

REPLAYED_HEADER = "jobtrail.dlq.replayed-from"


def dlq_topics(kafka: KafkaSettings) -> list[str]:
    catalog = topic_catalog(kafka.topic_prefix, kafka.partitions, kafka.replication_factor)
    return [catalog.job_events_dlq.name, catalog.vectorize_requests_dlq.name]


@dataclass(slots=True)
class DlqSummary:
    topic: str
    total: int = 0
    truncated: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)


def letters(kafka: KafkaSettings, topic: str) -> Iterator[tuple[int, int, DeadLetter]]:
    """(partition, offset in the DLQ, letter) for every letter the topic holds now."""
    for message in read_to_end(kafka, topic):
        yield message.partition() or 0, message.offset() or 0, read_dead_letter(message)


def summarize(kafka: KafkaSettings, topic: str) -> DlqSummary:
    summary = DlqSummary(topic)
    for _, _, letter in letters(kafka, topic):
        summary.total += 1
        summary.truncated += letter.truncated_from is not None
        summary.by_reason[letter.reason] += 1
    return summary


@dataclass(frozen=True, slots=True)
class ReplayResult:
    sent: int
    truncated_skipped: int
    by_topic: dict[str, int]


def replay(
    kafka: KafkaSettings, topic: str, *, reason: str | None = None, dry_run: bool = False
) -> ReplayResult:
    """Sends the letters of `topic` (those of `reason` only, when given) back to their source
    topics; waits for every acknowledgement (a failed delivery raises)."""
    producer = None if dry_run else Producer(producer_config(kafka, ProducerSettings()))
    failures: list[str] = []

    def delivered(error: object, _: object) -> None:
        if error is not None:
            failures.append(str(error))

    sent = skipped = 0
    by_topic: Counter[str] = Counter()
    for partition, offset, letter in letters(kafka, topic):
        if reason is not None and letter.reason != reason:
            continue
        if letter.truncated_from is not None:
            skipped += 1
            continue
        if producer is not None:
            origin: list[tuple[str, str | bytes | None]] = [
                (REPLAYED_HEADER, f"{topic}:{partition}:{offset}")
            ]
            producer.produce(letter.topic, letter.value, letter.key, on_delivery=delivered,
                             headers=origin)  # fmt: skip
            producer.poll(0)
        sent += 1
        by_topic[letter.topic] += 1
    if producer is not None:
        left = producer.flush(kafka.connect_timeout_s * 3)
        if left or failures:
            raise DeliveryError(
                f"replay: {left} records unacknowledged, failures: {failures[:3]}", retryable=True
            )
    return ReplayResult(sent, skipped, dict(by_topic))
