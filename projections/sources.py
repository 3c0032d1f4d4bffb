"""What a projection reads: its topics, and how a batch of their records becomes store items.

The projector and the rebuild are the same for every read model; a source is what differs. The
job read model reads job-events (`JobEventSource`); the analytics model reads job-events,
attempt-outcomes and error-vectors, the Couchbase projection job-events and error-vectors
(`JobEventsAndDerivedSource`). Every job event passes the contract
(`processors.validation.violation`, with the record's timestamp for the future-skew check); one
that breaks it, or a record that does not decode, becomes a position-only item: the store records
the position as applied and changes nothing else (the processors dead-letter such records).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

from jobtrail.errors import SchemaError
from processors.validation import ContractLimits, violation
from projections.analytics.model import AnalyticsRecord
from projections.model import Position
from schemas.codec import JobEventCodec, create_codec
from schemas.derived import AttemptOutcome, ErrorVector, decode_attempt_outcome, decode_error_vector
from schemas.job_event import JobEvent
from streams.settings import KafkaSettings
from streams.topics import topic_catalog

R = TypeVar("R")


@dataclass(slots=True)
class Decoded(Generic[R]):
    """A batch of log records as store items."""

    items: list[tuple[Position, R | None]]
    undecodable: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # contract violation reason -> events

    @property
    def skipped(self) -> int:
        return self.undecodable + self.rejected.total()


class RecordSource(Protocol[R]):
    topics: list[str]

    def decode(self, messages: Sequence[Message]) -> Decoded[R]: ...


def position_of(message: Message) -> Position:
    return Position(message.topic() or "", message.partition() or 0, message.offset() or 0)


def decode_job_event(
    message: Message, codec: JobEventCodec, limits: ContractLimits | None = None
) -> JobEvent | str:
    """The event, or why it is skipped: "undecodable" or the contract violation's reason."""
    try:
        event = codec.decode(message.value() or b"", message.topic() or "")
    except SchemaError:
        return "undecodable"
    kind, timestamp = message.timestamp()
    broken = violation(
        event,
        record_timestamp_ms=None if kind == TIMESTAMP_NOT_AVAILABLE else timestamp,
        limits=limits,
    )
    return event if broken is None else broken.reason


def decode_batch(
    messages: Sequence[Message], codec: JobEventCodec, limits: ContractLimits | None = None
) -> Decoded[JobEvent]:
    decoded: Decoded[JobEvent] = Decoded([])
    for message in messages:
        _append(decoded, position_of(message), decode_job_event(message, codec, limits))
    return decoded


def _append(decoded: Decoded[R], position: Position, record: R | str) -> None:
    if isinstance(record, str):
        decoded.items.append((position, None))
        if record == "undecodable":
            decoded.undecodable += 1
        else:
            decoded.rejected[record] += 1
    else:
        decoded.items.append((position, record))


class JobEventSource:
    def __init__(self, kafka: KafkaSettings) -> None:
        self.topics = [topic_catalog(kafka.topic_prefix).job_events.name]
        self.codec = create_codec(kafka.schema_registry_url)

    def decode(self, messages: Sequence[Message]) -> Decoded[JobEvent]:
        return decode_batch(messages, self.codec)


class JobEventsAndDerivedSource:
    """Job events (checked like everywhere else) and derived records (attempt outcomes, error
    vectors), each topic with its own decoder."""

    def __init__(
        self,
        kafka: KafkaSettings,
        derived: dict[str, Callable[[bytes], AttemptOutcome | ErrorVector]],
    ) -> None:
        self.job_events = topic_catalog(kafka.topic_prefix).job_events.name
        self.decoders = derived
        self.topics = [self.job_events, *derived]
        self.codec = create_codec(kafka.schema_registry_url)

    def decode(self, messages: Sequence[Message]) -> Decoded[AnalyticsRecord]:
        decoded: Decoded[AnalyticsRecord] = Decoded([])
        for message in messages:
            topic = message.topic() or ""
            record: AnalyticsRecord | str
            if topic == self.job_events:
                record = decode_job_event(message, self.codec)
            else:
                value = message.value()
                try:
                    # A compacted topic's tombstone (no value) deletes nothing here: skipped.
                    record = "undecodable" if value is None else self.decoders[topic](value)
                except SchemaError:
                    record = "undecodable"
            _append(decoded, position_of(message), record)
        return decoded


def analytics_source(kafka: KafkaSettings) -> JobEventsAndDerivedSource:
    """The analytics model's: job events, attempt outcomes, error vectors."""
    catalog = topic_catalog(kafka.topic_prefix)
    return JobEventsAndDerivedSource(kafka, {
        catalog.attempt_outcomes.name: decode_attempt_outcome,
        catalog.error_vectors.name: decode_error_vector,
    })  # fmt: skip


def couchbase_source(kafka: KafkaSettings) -> JobEventsAndDerivedSource:
    """The Couchbase projection's: job events, and error vectors for the error documents."""
    catalog = topic_catalog(kafka.topic_prefix)
    return JobEventsAndDerivedSource(kafka, {catalog.error_vectors.name: decode_error_vector})
