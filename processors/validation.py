"""The event contract beyond what Avro checks: what makes a decoded JobEvent unusable.

`violation(event)` returns None for a good event, or a `Violation` whose `reason` is one of a
small fixed vocabulary (a Prometheus label: never a job id or a free text) and whose `detail` says
exactly what is wrong. Undecodable bytes never get here: their reason comes from the codec's
typed error (`UnknownSchemaError` → unknown_schema, other `SchemaError` → undecodable).
"""

from __future__ import annotations

from dataclasses import dataclass

from jobtrail.errors import SchemaError, UnknownSchemaError
from schemas.job_event import JobEvent, JobEventType

# Bounds that keep one event from flooding the stores: a job's input and result are payload
# references or small documents, error stacks are truncated by every sane reporter.
MAX_ID_BYTES = 256
MAX_NAME_BYTES = 256
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_ERROR_BYTES = 64 * 1024
MAX_ATTRIBUTES = 64

REASONS = (
    "undecodable",
    "unknown_schema",
    "missing_event_id",
    "missing_job_id",
    "missing_job_name",
    "attempt_below_1",
    "oversized_field",
    "error_on_wrong_type",
)


@dataclass(frozen=True, slots=True)
class Violation:
    reason: str
    detail: str


def decode_violation(error: SchemaError) -> Violation:
    reason = "unknown_schema" if isinstance(error, UnknownSchemaError) else "undecodable"
    return Violation(reason, str(error))


def _size(text: str | None) -> int:
    return 0 if text is None else len(text.encode())


def violation(event: JobEvent) -> Violation | None:
    if not event.event_id:
        return Violation("missing_event_id", "event_id is empty")
    if not event.job_id:
        return Violation("missing_job_id", "job_id is empty")
    if not event.job_name:
        return Violation("missing_job_name", "job_name is empty")
    if event.attempt < 1:
        return Violation("attempt_below_1", f"attempt is {event.attempt}; attempts count from 1")
    if event.error is not None and event.type is not JobEventType.FAILED:
        return Violation("error_on_wrong_type", f"{event.type.value} events carry no error")
    return _oversized(event)


def _oversized(event: JobEvent) -> Violation | None:
    limits = (
        ("event_id", _size(event.event_id), MAX_ID_BYTES),
        ("job_id", _size(event.job_id), MAX_ID_BYTES),
        ("job_name", _size(event.job_name), MAX_NAME_BYTES),
        ("queue", _size(event.queue), MAX_NAME_BYTES),
        ("worker", _size(event.worker), MAX_NAME_BYTES),
        ("data", _size(event.data), MAX_PAYLOAD_BYTES),
        ("result", _size(event.result), MAX_PAYLOAD_BYTES),
        (
            "error",
            0 if event.error is None else _size(event.error.message) + _size(event.error.stack),
            MAX_ERROR_BYTES,
        ),
        ("attributes", len(event.attributes), MAX_ATTRIBUTES),
    )
    for field, size, limit in limits:
        if size > limit:
            return Violation("oversized_field", f"{field} is {size}, the limit is {limit}")
    return None
