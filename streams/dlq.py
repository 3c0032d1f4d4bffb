"""Dead-letter records: bad input becomes data on the DLQ topic, never a stuck partition.

A dead-letter record keeps the original key and bytes untouched and says why and where from in
headers, so it can be inspected, fixed and replayed. The one exception: a record whose dead letter
(its bytes plus these headers) would not fit the producer's or the broker's message limit. Then
the dead letter carries a truncated copy of the value (`fit`), and the `jobtrail.dlq.truncated`
header gives the original value's size: the original itself is still in the source topic, at the
offset the headers name.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from streams.backpressure import produce_waiting

REASON_HEADER = "jobtrail.dlq.reason"
DETAIL_HEADER = "jobtrail.dlq.detail"
SOURCE_TOPIC_HEADER = "jobtrail.dlq.topic"
SOURCE_PARTITION_HEADER = "jobtrail.dlq.partition"
SOURCE_OFFSET_HEADER = "jobtrail.dlq.offset"
TRUNCATED_HEADER = "jobtrail.dlq.truncated"

MAX_DETAIL_BYTES = 2048
# librdkafka's default message.max.bytes, below the broker's and topics' default (1,048,588).
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000
# Room for what librdkafka adds around a record (record batch header, varints, header framing):
# a record of `size` + this always fits a limit of that size.
RECORD_OVERHEAD_BYTES = 1024


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
    truncated_from: int | None = None  # the original value's size, when `value` is a prefix

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
        headers: list[tuple[str, str | bytes | None]] = [
            (REASON_HEADER, self.reason.encode()),
            (DETAIL_HEADER, self.detail.encode()[:MAX_DETAIL_BYTES]),
            (SOURCE_TOPIC_HEADER, self.topic.encode()),
            (SOURCE_PARTITION_HEADER, str(self.partition).encode()),
            (SOURCE_OFFSET_HEADER, str(self.offset).encode()),
        ]
        if self.truncated_from is not None:
            headers.append((TRUNCATED_HEADER, str(self.truncated_from).encode()))
        return headers

    def size(self) -> int:
        """Bytes of key, value and headers: what a message size limit counts (less framing)."""
        headers = sum(len(name) + len(value or b"") for name, value in self.headers())
        return len(self.key or b"") + len(self.value or b"") + headers


def fit(letter: DeadLetter, max_bytes: int) -> DeadLetter:
    """`letter`, or a copy whose value is cut so that the record fits a `max_bytes` message
    limit (with room for framing), marked with the original size. The key is kept whole: it
    routes the letter and names the job (the contract bounds it)."""
    if letter.size() + RECORD_OVERHEAD_BYTES <= max_bytes or letter.value is None:
        return letter
    original = len(letter.value) if letter.truncated_from is None else letter.truncated_from
    marked = replace(letter, truncated_from=original)
    room = max_bytes - RECORD_OVERHEAD_BYTES - (marked.size() - len(letter.value))
    return replace(marked, value=letter.value[: max(0, room)])


class DeadLetterWriter:
    """Produces dead letters through an existing (idempotent) producer and counts them by reason.

    Durability comes from the caller flushing that producer before committing offsets. A letter
    too large for `max_bytes` (the producer's message.max.bytes) goes as a truncated copy; one the
    producer still refuses for its size goes with its headers only, so a poison record is never
    retried forever.
    """

    def __init__(
        self, producer: Producer, dlq_topic: str, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    ) -> None:
        self._producer = producer
        self.topic = dlq_topic
        self.max_bytes = max_bytes
        self.counts: Counter[str] = Counter()
        self.truncated = 0

    def write(self, letter: DeadLetter) -> None:
        fitted = fit(letter, self.max_bytes)
        try:
            self._produce(fitted)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                raise
            fitted = fit(letter, 0)  # headers only: whatever the limit, they fit
            self._produce(fitted)
        self.truncated += fitted.truncated_from is not None
        self.counts[letter.reason] += 1

    def _produce(self, letter: DeadLetter) -> None:
        produce_waiting(self._producer, self.topic, letter.value, letter.key,
                        headers=letter.headers())  # fmt: skip


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
        truncated_from=int(text(TRUNCATED_HEADER)) if headers.get(TRUNCATED_HEADER) else None,
    )
