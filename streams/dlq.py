"""Dead-letter records: bad input becomes data on the DLQ topic, never a stuck partition.

A dead-letter record keeps the original key and bytes untouched and says why and where from in
headers, so it can be inspected, fixed and replayed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from confluent_kafka import Message, Producer

from streams.backpressure import produce_waiting

REASON_HEADER = "jobtrail.dlq.reason"
DETAIL_HEADER = "jobtrail.dlq.detail"
SOURCE_TOPIC_HEADER = "jobtrail.dlq.topic"
SOURCE_PARTITION_HEADER = "jobtrail.dlq.partition"
SOURCE_OFFSET_HEADER = "jobtrail.dlq.offset"

MAX_DETAIL_BYTES = 2048


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected message: where it came from, what it was, and why it was rejected.

    `reason` is a short, bounded vocabulary (a metric label); `detail` is free text.
    """

    reason: str
    detail: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @classmethod
    def of(cls, message: Message, reason: str, detail: str) -> DeadLetter:
        return cls(
            reason=reason,
            detail=detail,
            topic=message.topic() or "",
            partition=message.partition() or 0,
            offset=message.offset() or 0,
            key=message.key(),
            value=message.value(),
        )

    def headers(self) -> list[tuple[str, str | bytes | None]]:
        return [
            (REASON_HEADER, self.reason.encode()),
            (DETAIL_HEADER, self.detail.encode()[:MAX_DETAIL_BYTES]),
            (SOURCE_TOPIC_HEADER, self.topic.encode()),
            (SOURCE_PARTITION_HEADER, str(self.partition).encode()),
            (SOURCE_OFFSET_HEADER, str(self.offset).encode()),
        ]


class DeadLetterWriter:
    """Produces dead letters through an existing (idempotent) producer and counts them by reason.

    Durability comes from the caller flushing that producer before committing offsets.
    """

    def __init__(self, producer: Producer, dlq_topic: str) -> None:
        self._producer = producer
        self.topic = dlq_topic
        self.counts: Counter[str] = Counter()

    def write(self, letter: DeadLetter) -> None:
        produce_waiting(self._producer, self.topic, letter.value, letter.key,
                        headers=letter.headers())  # fmt: skip
        self.counts[letter.reason] += 1


def read_dead_letter(message: Message) -> DeadLetter:
    """Parses a record read back from the DLQ topic."""
    raw = message.headers() or []
    headers = dict(raw.items() if isinstance(raw, dict) else raw)

    def text(name: str) -> str:
        value = headers.get(name)
        return value.decode() if isinstance(value, bytes) else (value or "")

    return DeadLetter(
        reason=text(REASON_HEADER),
        detail=text(DETAIL_HEADER),
        topic=text(SOURCE_TOPIC_HEADER),
        partition=int(text(SOURCE_PARTITION_HEADER) or -1),
        offset=int(text(SOURCE_OFFSET_HEADER) or -1),
        key=message.key(),
        value=message.value(),
    )
