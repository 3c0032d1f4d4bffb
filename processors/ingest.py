"""The first stage, as a pure function: one job-events record in, what to do with it out.

A record either becomes a dead letter (it does not decode, or breaks the contract: the one
`processors.validation.violation`, with the record's timestamp for the future-skew check) or an
accepted event, with the fingerprint sighting of its error (FAILED events with an error).
`first_stage` adds the rest of the decision: a re-sent event_id is dropped
(`processors.event_ids`), and the attempt edge comes from `processors.attempts.track` and the
job's open attempt. The agent in `processors.app` only moves these to their topics and tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from jobtrail.errors import SchemaError
from processors.attempts import AttemptEdge, LatestAttempt, track
from processors.dedup import Sighting
from processors.event_ids import SeenEvents, check, expired
from processors.fingerprint import fingerprint
from processors.validation import ContractLimits, Violation, decode_violation, violation
from schemas.codec import JobEventCodec
from schemas.job_event import JobEvent, JobEventType, millis


@dataclass(frozen=True, slots=True)
class Rejected:
    violation: Violation


@dataclass(frozen=True, slots=True)
class Accepted:
    event: JobEvent
    sighting: Sighting | None


def ingest(
    codec: JobEventCodec,
    value: bytes | None,
    topic: str,
    record_timestamp_ms: int | None = None,
    limits: ContractLimits | None = None,
) -> Rejected | Accepted:
    if value is None:
        return Rejected(Violation("undecodable", "the record has no value (a tombstone)"))
    try:
        event = codec.decode(value, topic)
    except SchemaError as exc:
        return Rejected(decode_violation(exc))
    broken = violation(event, record_timestamp_ms=record_timestamp_ms, limits=limits)
    if broken is not None:
        return Rejected(broken)
    sighting = None
    if event.type is JobEventType.FAILED and event.error is not None:
        print_ = fingerprint(event.error)
        sighting = Sighting(
            fingerprint=print_.sha256,
            template=print_.template,
            message=f"{event.error.type}: {event.error.message}",
            job_name=event.job_name,
            occurred_at_ms=millis(event.occurred_at),
        )
    return Accepted(event, sighting)


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A re-sent event: its event_id was already counted for its job (processors.event_ids)."""

    event: JobEvent


@dataclass(frozen=True, slots=True)
class Step:
    """What an accepted, first-seen event changes: the rows to write (None: unchanged) and the
    outputs to send."""

    event: JobEvent
    sighting: Sighting | None
    seen: SeenEvents | None
    seen_new: bool  # `seen` starts a row (none, or the old one was out of the window)
    latest: LatestAttempt | None
    edge: AttemptEdge | None


@dataclass(frozen=True, slots=True)
class Record:
    """The parts of a job-events record the first stage decides on."""

    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None


def first_stage(
    codec: JobEventCodec,
    record: Record,
    *,
    seen_of: Callable[[str], SeenEvents | None],
    latest_of: Callable[[str], LatestAttempt | None],
    limits: ContractLimits | None,
    max_ids: int,
    window_ms: int,
) -> Rejected | Duplicate | Step:
    """The whole decision for one record, with no writes: reject it, drop it as a re-send, or
    what it changes. `seen_of`/`latest_of` read the job's table rows."""
    result = ingest(codec, record.value, record.topic, record.timestamp_ms, limits)
    if isinstance(result, Rejected):
        return result
    event = result.event
    before_seen = seen_of(event.job_id)
    at_ms = millis(event.occurred_at)
    seen, duplicate = check(
        before_seen,
        event.event_id,
        offset=record.offset,
        at_ms=at_ms,
        partition=record.partition,
        max_ids=max_ids,
        window_ms=window_ms,
    )
    if duplicate:
        return Duplicate(event)
    before = latest_of(event.job_id)
    sighting = result.sighting
    after, edge = track(before, event, None if sighting is None else sighting.fingerprint)
    return Step(
        event=event,
        sighting=sighting,
        seen=None if seen is before_seen else seen,
        seen_new=before_seen is None or expired(before_seen, at_ms, window_ms),
        latest=after if after is not None and after != before else None,
        edge=edge,
    )
