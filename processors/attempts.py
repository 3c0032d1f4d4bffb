"""Attempt edges: where each attempt of a job starts and ends, in event time.

The first stage of attempt outcomes runs where job-events are (keyed by job id). It remembers the
open attempt of each job (`LatestAttempt`, a changelog-backed table row) and turns lifecycle events
into `AttemptEdge`s: a start at ACTIVE, an end at COMPLETED, FAILED, STALLED or CANCELLED. Edges
are repartitioned by worker and by job name, where `processors.concurrency` counts what runs at
once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from schemas.job_event import JobEvent, JobEventType, millis

# A member of a concurrency set: one attempt of one job. The unit separator cannot occur in
# either part's meaning and keeps the key a plain string (table keys, JSON object keys).
SEPARATOR = "\x1f"


class Dimension(StrEnum):
    WORKER = "worker"
    JOB_NAME = "job_name"


def dimension_key(dimension: Dimension, key: str) -> str:
    """The concurrency stage's partition key and table key of one worker or job name."""
    return f"{dimension}{SEPARATOR}{key}"


@dataclass(frozen=True, slots=True)
class LatestAttempt:
    """A job's latest attempt: where and when it started, and whether it has ended. Kept after
    the end so that a redelivered end makes the same edge again (see `track`)."""

    attempt: int
    started_at_ms: int
    worker: str | None
    ended: bool = False

    def to_json(self) -> list[Any]:
        return [self.attempt, self.started_at_ms, self.worker, self.ended]

    @classmethod
    def from_json(cls, data: list[Any]) -> LatestAttempt:
        return cls(data[0], data[1], data[2], data[3])


@dataclass(frozen=True, slots=True)
class AttemptEdge:
    """A start (`outcome` None) or an end of one attempt, at `time_ms` in event time."""

    time_ms: int
    job_id: str
    job_name: str
    attempt: int
    worker: str | None
    outcome: JobEventType | None = None
    terminal: bool = False
    started_at_ms: int | None = None
    fingerprint: str | None = None

    @property
    def is_start(self) -> bool:
        return self.outcome is None

    @property
    def member(self) -> str:
        return f"{self.job_id}{SEPARATOR}{self.attempt}"

    def counted_on(self) -> list[tuple[Dimension, str]]:
        """Where this edge counts: its worker (when known) and its job name."""
        keys = [(Dimension.JOB_NAME, self.job_name)]
        if self.worker is not None:
            keys.insert(0, (Dimension.WORKER, self.worker))
        return keys

    def to_json(self) -> dict[str, Any]:
        return {
            "t": self.time_ms,
            "j": self.job_id,
            "n": self.job_name,
            "a": self.attempt,
            "w": self.worker,
            "o": None if self.outcome is None else self.outcome.value,
            "x": self.terminal,
            "s": self.started_at_ms,
            "f": self.fingerprint,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AttemptEdge:
        outcome = data["o"]
        return cls(
            time_ms=data["t"],
            job_id=data["j"],
            job_name=data["n"],
            attempt=data["a"],
            worker=data["w"],
            outcome=None if outcome is None else JobEventType(outcome),
            terminal=data["x"],
            started_at_ms=data["s"],
            fingerprint=data["f"],
        )


def is_terminal(event: JobEvent) -> bool:
    """Whether the job will not run again after this event."""
    if event.type in (JobEventType.COMPLETED, JobEventType.CANCELLED):
        return True
    return event.will_retry is False


def track(
    latest: LatestAttempt | None, event: JobEvent, fingerprint: str | None = None
) -> tuple[LatestAttempt | None, AttemptEdge | None]:
    """The job's latest attempt after `event`, and the edge it makes (None for other types).

    Redelivery makes the same edge again rather than none: the output of the first delivery may
    be what a crash lost, and the concurrency stage ignores an edge it has already counted. An
    end without a start (a job cancelled while queued) is an end with no start time.
    """
    at = millis(event.occurred_at)
    if event.type is JobEventType.ACTIVE:
        if latest is None or latest.attempt != event.attempt:
            latest = LatestAttempt(event.attempt, at, event.worker)
        edge = AttemptEdge(
            latest.started_at_ms, event.job_id, event.job_name, event.attempt, latest.worker
        )
        return latest, edge
    if not event.type.ends_attempt:
        return latest, None
    started = latest if latest is not None and latest.attempt == event.attempt else None
    edge = AttemptEdge(
        time_ms=at,
        job_id=event.job_id,
        job_name=event.job_name,
        attempt=event.attempt,
        worker=event.worker if started is None else started.worker,  # where its start counted
        outcome=event.type,
        terminal=is_terminal(event),
        started_at_ms=None if started is None else started.started_at_ms,
        fingerprint=fingerprint,
    )
    return (latest if started is None else replace(started, ended=True)), edge
