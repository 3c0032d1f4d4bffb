"""The typed Python form of the JobEvent contract (schemas/job_event.avsc).

Values are frozen dataclasses; `to_avro`/`from_avro` convert to and from the plain dicts fastavro
reads and writes. Both are deliberately flat and explicit: they sit on the producer's hot path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

from jobtrail.errors import EncodeError

# Avro int's range. fastavro writes any Python int into an int field without complaint (and
# reads back garbage past 64 bits), so encoders check these themselves.
AVRO_INT_MIN, AVRO_INT_MAX = -(2**31), 2**31 - 1


class JobEventType(StrEnum):
    QUEUED = "QUEUED"
    ACTIVE = "ACTIVE"
    PROGRESS = "PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STALLED = "STALLED"
    CANCELLED = "CANCELLED"

    @property
    def ends_attempt(self) -> bool:
        """True for the types that close an attempt (and so yield an attempt outcome)."""
        return self in _ENDING


_ENDING = frozenset(
    {JobEventType.COMPLETED, JobEventType.FAILED, JobEventType.STALLED, JobEventType.CANCELLED}
)


@dataclass(frozen=True, slots=True)
class JobError:
    type: str
    message: str
    stack: str | None = None


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One step in the lifecycle of one attempt of a job. Kafka key: `job_id`."""

    event_id: str
    job_id: str
    job_name: str
    type: JobEventType
    attempt: int
    occurred_at: datetime
    queue: str | None = None
    max_attempts: int | None = None
    worker: str | None = None
    source: str | None = None
    data: str | None = None
    progress: float | None = None
    result: str | None = None
    error: JobError | None = None
    will_retry: bool | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    def to_avro(self) -> dict[str, Any]:
        """The record fastavro writes. Raises `EncodeError` for ints outside Avro int."""
        for name, value in (("attempt", self.attempt), ("max_attempts", self.max_attempts)):
            if isinstance(value, int) and not AVRO_INT_MIN <= value <= AVRO_INT_MAX:
                raise EncodeError(f"{name} is {value}: outside Avro int (32-bit signed)")
        error = self.error
        return {
            "event_id": self.event_id,
            "job_id": self.job_id,
            "job_name": self.job_name,
            "queue": self.queue,
            "type": self.type,  # a StrEnum is already the symbol fastavro expects
            "attempt": self.attempt,
            "max_attempts": self.max_attempts,
            "occurred_at": self.occurred_at,
            "worker": self.worker,
            "source": self.source,
            "data": self.data,
            "progress": self.progress,
            "result": self.result,
            "error": None
            if error is None
            else {"type": error.type, "message": error.message, "stack": error.stack},
            "will_retry": self.will_retry,
            "attributes": self.attributes,
        }

    @classmethod
    def from_avro(cls, record: dict[str, Any]) -> JobEvent:
        error = record.get("error")
        occurred_at = record["occurred_at"]
        if not isinstance(occurred_at, datetime):  # a reader schema without the logical type
            occurred_at = from_millis(occurred_at)
        return cls(
            event_id=record["event_id"],
            job_id=record["job_id"],
            job_name=record["job_name"],
            type=JobEventType(record["type"]),
            attempt=record["attempt"],
            occurred_at=occurred_at,
            queue=record.get("queue"),
            max_attempts=record.get("max_attempts"),
            worker=record.get("worker"),
            source=record.get("source"),
            data=record.get("data"),
            progress=record.get("progress"),
            result=record.get("result"),
            error=None if error is None else JobError(**error),
            will_retry=record.get("will_retry"),
            attributes=record.get("attributes") or {},
        )


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def millis(moment: datetime) -> int:
    """Milliseconds since the epoch, the wire resolution of `occurred_at` (exact, no floats)."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def from_millis(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


@cache
def job_event_schema() -> dict[str, Any]:
    """The current JobEvent schema as JSON data (parse it with fastavro before use)."""
    text = resources.files("schemas").joinpath("job_event.avsc").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
