"""The event contract beyond what Avro checks: what makes a decoded JobEvent unusable.

`violation(event, record_timestamp_ms=..., limits=...)` returns None for a good event, or a
`Violation` whose `reason` is one of a small fixed vocabulary (`REASONS`, a Prometheus label: never
a job id or a free text) and whose `detail` says exactly what is wrong. Every consumer (the
processors, both projections) calls this one function, so they accept and refuse the same events.
Undecodable bytes never get here: their reason comes from the codec's typed error
(`UnknownSchemaError` → unknown_schema, other `SchemaError` → undecodable).

The future-skew check compares event time with the Kafka record's timestamp rather than a wall
clock, so a replay decides exactly as the first run did.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobtrail.errors import SchemaError, UnknownSchemaError
from schemas.job_event import AVRO_INT_MAX, AVRO_INT_MIN, JobEvent, JobEventType, millis

# Nothing jobtrail tracks happened before this; earlier dates are zeroed or unit-confused clocks
# (seconds sent as milliseconds land in 1970).
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)

# Kept as module constants for callers that size things by them (the defaults of ContractLimits).
MAX_ID_BYTES = 256
MAX_NAME_BYTES = 256
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_ERROR_BYTES = 64 * 1024
MAX_ATTRIBUTES = 64
MAX_ATTRIBUTE_KEY_BYTES = 256
MAX_ATTRIBUTE_VALUE_BYTES = 4 * 1024


class ContractLimits(BaseSettings):
    """Bounds that keep one event from flooding the stores or stalling a consumer.

    A job's input and result are payload references or small documents; error stacks are
    truncated by every sane reporter. Env prefix `JOBTRAIL_CONTRACT_`, read by the processors and
    the projections alike, so both edges enforce the same numbers.
    """

    model_config = SettingsConfigDict(env_prefix="JOBTRAIL_CONTRACT_", frozen=True, extra="ignore")

    max_future_skew_s: float = Field(
        default=86_400.0,
        ge=0,
        description="How far an event's occurred_at may lie after its Kafka record's timestamp",
    )
    max_id_bytes: int = Field(default=MAX_ID_BYTES, gt=0, description="event_id, job_id")
    max_name_bytes: int = Field(
        default=MAX_NAME_BYTES, gt=0, description="job_name, queue, worker, source, error type"
    )
    max_payload_bytes: int = Field(default=MAX_PAYLOAD_BYTES, gt=0, description="data, result")
    max_error_bytes: int = Field(
        default=MAX_ERROR_BYTES, gt=0, description="error message and stack, together"
    )
    max_attributes: int = Field(default=MAX_ATTRIBUTES, ge=0, description="attribute count")
    max_attribute_key_bytes: int = Field(default=MAX_ATTRIBUTE_KEY_BYTES, gt=0)
    max_attribute_value_bytes: int = Field(default=MAX_ATTRIBUTE_VALUE_BYTES, gt=0)


@cache
def default_limits() -> ContractLimits:
    """The limits from the environment, read once (the hot path calls `violation` per record)."""
    return ContractLimits()


REASONS = (
    "undecodable",
    "unknown_schema",
    "missing_event_id",
    "missing_job_id",
    "missing_job_name",
    "attempt_below_1",
    "int_out_of_range",
    "progress_not_finite",
    "event_time_without_zone",
    "event_time_too_old",
    "event_time_in_future",
    "oversized_field",
    "error_on_wrong_type",
    # Not a rule of the contract: a record some processing step failed on (a bug, or input no
    # rule foresaw), dead-lettered rather than retried forever.
    "handler_error",
)


@dataclass(frozen=True, slots=True)
class Violation:
    reason: str
    detail: str


def decode_violation(error: SchemaError) -> Violation:
    reason = "unknown_schema" if isinstance(error, UnknownSchemaError) else "undecodable"
    return Violation(reason, str(error))


def _size(text: str | None) -> int:
    # UTF-8 length is at most 4 per character: skip the encode for text that is surely short.
    if text is None:
        return 0
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def violation(
    event: JobEvent,
    *,
    record_timestamp_ms: int | None = None,
    limits: ContractLimits | None = None,
) -> Violation | None:
    """The first rule `event` breaks, or None. `record_timestamp_ms`: the Kafka record's
    timestamp (None skips the future-skew check, e.g. for events not read from a topic)."""
    limits = limits or default_limits()
    if not event.event_id:
        return Violation("missing_event_id", "event_id is empty")
    if not event.job_id:
        return Violation("missing_job_id", "job_id is empty")
    if not event.job_name:
        return Violation("missing_job_name", "job_name is empty")
    if event.attempt < 1:
        return Violation("attempt_below_1", f"attempt is {event.attempt}; attempts count from 1")
    return (
        _out_of_range(event)
        or _not_finite(event)
        or _bad_time(event, record_timestamp_ms, limits)
        or _wrong_type(event)
        or _oversized(event, limits)
    )


def _out_of_range(event: JobEvent) -> Violation | None:
    for field, value in (("attempt", event.attempt), ("max_attempts", event.max_attempts)):
        if value is not None and not AVRO_INT_MIN <= value <= AVRO_INT_MAX:
            return Violation("int_out_of_range", f"{field} is {value}, outside Avro int")
    return None


def _not_finite(event: JobEvent) -> Violation | None:
    if event.progress is not None and not math.isfinite(event.progress):
        return Violation("progress_not_finite", f"progress is {event.progress}")
    return None


def _bad_time(
    event: JobEvent, record_timestamp_ms: int | None, limits: ContractLimits
) -> Violation | None:
    moment = event.occurred_at
    if moment.tzinfo is None or moment.utcoffset() is None:
        return Violation("event_time_without_zone", f"occurred_at {moment} has no time zone")
    if moment < EARLIEST_EVENT_TIME:
        return Violation("event_time_too_old", f"occurred_at {moment.isoformat()} is before 2000")
    if record_timestamp_ms is not None:
        ahead_ms = millis(moment) - record_timestamp_ms
        if ahead_ms > limits.max_future_skew_s * 1000:
            return Violation(
                "event_time_in_future",
                f"occurred_at {moment.isoformat()} is {ahead_ms / 1000:.0f} s after the record's "
                f"timestamp; the limit is {limits.max_future_skew_s:.0f} s",
            )
    return None


def _wrong_type(event: JobEvent) -> Violation | None:
    if event.error is not None and event.type is not JobEventType.FAILED:
        return Violation("error_on_wrong_type", f"{event.type.value} events carry no error")
    return None


def _sizes(event: JobEvent, limits: ContractLimits) -> Iterator[tuple[str, int, int]]:
    yield "event_id", _size(event.event_id), limits.max_id_bytes
    yield "job_id", _size(event.job_id), limits.max_id_bytes
    for name, text in (
        ("job_name", event.job_name),
        ("queue", event.queue),
        ("worker", event.worker),
        ("source", event.source),
    ):
        yield name, _size(text), limits.max_name_bytes
    yield "data", _size(event.data), limits.max_payload_bytes
    yield "result", _size(event.result), limits.max_payload_bytes
    error = event.error
    if error is not None:
        yield "error.type", _size(error.type), limits.max_name_bytes
        message, stack = _size(error.message), _size(error.stack)
        yield "error.message", message, limits.max_error_bytes
        yield "error.stack", stack, limits.max_error_bytes
        yield "error", message + stack, limits.max_error_bytes
    yield "attributes", len(event.attributes), limits.max_attributes
    for key, value in event.attributes.items():
        yield "attribute key", _size(key), limits.max_attribute_key_bytes
        yield f"attribute {key[:64]!r}", _size(value), limits.max_attribute_value_bytes


def _oversized(event: JobEvent, limits: ContractLimits) -> Violation | None:
    for field, size, limit in _sizes(event, limits):
        if size > limit:
            return Violation("oversized_field", f"{field} is {size}, the limit is {limit}")
    return None
