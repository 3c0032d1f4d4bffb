"""The first stage, as a pure function: one job-events record in, what to do with it out.

A record either becomes a dead letter (it does not decode, or breaks the contract) or an
accepted event, with the fingerprint sighting of its error (FAILED events with an error); the
attempt edge it makes comes from `processors.attempts.track` and the job's open attempt. The agent
in `processors.app` only moves these to their topics.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobtrail.errors import SchemaError
from processors.dedup import Sighting
from processors.fingerprint import fingerprint
from processors.validation import Violation, decode_violation, violation
from schemas.codec import JobEventCodec
from schemas.job_event import JobEvent, JobEventType, millis


@dataclass(frozen=True, slots=True)
class Rejected:
    violation: Violation


@dataclass(frozen=True, slots=True)
class Accepted:
    event: JobEvent
    sighting: Sighting | None


def ingest(codec: JobEventCodec, value: bytes | None, topic: str) -> Rejected | Accepted:
    if value is None:
        return Rejected(Violation("undecodable", "the record has no value (a tombstone)"))
    try:
        event = codec.decode(value, topic)
    except SchemaError as exc:
        return Rejected(decode_violation(exc))
    broken = violation(event)
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
