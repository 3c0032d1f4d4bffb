"""A job's history, readable: every event the Couchbase job document keeps, and its attempts with
their durations, workers and errors, derived from those events by a pure function.

The job document (projections/couchbase_docs.py) keeps the last `HISTORY_LIMIT` events; older
ones are counted in `history_dropped` and stay in the job-events topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from jobtrail.times import utc_from_ms

_ENDS = {"COMPLETED", "FAILED", "STALLED", "CANCELLED"}


class HistoryEvent(BaseModel):
    event_id: str
    type: str
    at: datetime
    attempt: int
    worker: str | None = None
    progress: float | str | None = None
    will_retry: bool | None = None
    error_fingerprint: str | None = None


class Attempt(BaseModel):
    attempt: int
    worker: str | None
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: int | None
    outcome: str | None = Field(description="COMPLETED, FAILED, STALLED, CANCELLED; null: running")
    last_progress: float | str | None
    error_fingerprint: str | None


class JobHistory(BaseModel):
    job_id: str
    job_name: str
    queue: str | None
    data: str | None = Field(description="the input, as queued (immutable)")
    state: str
    attempts: list[Attempt]
    events: list[HistoryEvent] = Field(description="oldest first")
    events_dropped: int = Field(description="older events the document no longer keeps")


def attempts_of(events: Sequence[HistoryEvent]) -> list[Attempt]:
    """One row per attempt, in attempt order: when it started and ended, on which worker, how it
    ended and with which error."""
    rows: dict[int, dict[str, Any]] = {}
    for event in events:
        row = rows.setdefault(event.attempt, {
            "attempt": event.attempt, "worker": None, "started_at": None, "ended_at": None,
            "outcome": None, "last_progress": None, "error_fingerprint": None,
        })  # fmt: skip
        if event.worker is not None:
            row["worker"] = event.worker
        if event.type == "ACTIVE":
            row["started_at"] = event.at
        elif event.type == "PROGRESS":
            row["last_progress"] = event.progress
        elif event.type in _ENDS:
            row["ended_at"], row["outcome"] = event.at, event.type
            row["error_fingerprint"] = event.error_fingerprint
    attempts = []
    for _, row in sorted(rows.items()):
        start, end = row["started_at"], row["ended_at"]
        duration = (
            None if start is None or end is None else round((end - start).total_seconds() * 1000)
        )
        attempts.append(Attempt(**row, duration_ms=duration))
    return [a for a in attempts if a.started_at is not None or a.outcome is not None]


def history_of(document: dict[str, Any]) -> JobHistory:
    events = [
        HistoryEvent(**{**entry, "at": utc_from_ms(entry["at"])})
        for entry in document.get("history", [])
    ]
    return JobHistory(
        job_id=document["job_id"], job_name=document["job_name"], queue=document.get("queue"),
        data=document.get("data"), state=document.get("state", ""), attempts=attempts_of(events),
        events=events,
        events_dropped=int(document.get("counters", {}).get("history_dropped", 0)),
    )  # fmt: skip
