"""The read model every projection maintains, and the pure fold that defines it.

`ReadModel.apply(event, position)` is the specification: the Redis script and the Couchbase
adapter implement the same semantics, and the tests compare each of them with this fold over the
same events. Nothing here reads a clock or draws a random number: state is a function of the log.

Job states: a job is `queued` until its first attempt starts, `active` while an attempt runs,
then `completed`, `retrying` (failed, another attempt will come), `failed` (terminal),
`stalled` (the stall detector took the attempt away) or `cancelled`.

Each event is applied at most once, by two guards:
- the offset guard: `offsets` holds, per source partition, the highest offset applied; a record at
  or below it is a redelivery or a replay and changes nothing;
- the event_id guard: each job keeps the event_ids of its last `EVENT_ID_WINDOW` (128) applied
  events (`JobView.recent_event_ids`); an event whose event_id is among them is a re-sent copy (a
  producer retry, a bridge reading twice, a replayed file or dead letter) and changes nothing but
  the offset guard. A re-sent event therefore counts once if its job's last 128 events include
  the original: the window is per job and has no time limit (jobs stay in the store anyway), and
  a job with more than 128 events between an original and its copy would count the copy again.
  All of a job's events share a partition, so the check needs no coordination.

A batch applies only where it follows what the store recorded (`first_gap`): a store that lost
writes (restarted from an older snapshot, failed over) refuses the batch instead of recording the
lost records as applied, and the projector repositions from the store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from processors.fingerprint import fingerprint
from schemas.job_event import JobEvent, JobEventType, millis

# How many of a job's latest event_ids the event_id guard remembers (see the module docstring).
EVENT_ID_WINDOW = 128


class JobState(StrEnum):
    QUEUED = "queued"
    ACTIVE = "active"
    COMPLETED = "completed"
    RETRYING = "retrying"
    FAILED = "failed"
    STALLED = "stalled"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})


def state_after(event: JobEvent) -> JobState:
    kind = event.type
    if kind is JobEventType.QUEUED:
        return JobState.QUEUED
    if kind in (JobEventType.ACTIVE, JobEventType.PROGRESS):
        return JobState.ACTIVE
    if kind is JobEventType.COMPLETED:
        return JobState.COMPLETED
    if kind is JobEventType.FAILED:
        return JobState.RETRYING if event.will_retry else JobState.FAILED
    if kind is JobEventType.STALLED:
        return JobState.STALLED
    return JobState.CANCELLED


@dataclass(frozen=True, slots=True)
class Position:
    """Where an event sits in the log: the guard key of at-most-once application."""

    topic: str
    partition: int
    offset: int

    @property
    def source(self) -> str:
        return f"{self.topic}:{self.partition}"


@dataclass(slots=True)
class JobView:
    job_id: str
    job_name: str
    created_at: int  # ms of the first event seen (QUEUED, normally)
    queue: str | None = None
    data: str | None = None  # input payload, from QUEUED only, written once
    state: JobState = JobState.QUEUED
    attempts: int = 0
    failures: int = 0  # failed or stalled attempts
    worker: str | None = None
    progress: str | None = None  # repr of the last progress value
    first_started_at: int | None = None
    last_started_at: int | None = None
    ended_at: int | None = None  # end of the last attempt
    finished_at: int | None = None  # terminal end
    updated_at: int = 0
    last_error_fingerprint: str | None = None
    last_error_type: str | None = None
    # event_ids of the last EVENT_ID_WINDOW events applied to the job, oldest first.
    recent_event_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Latest:
    created_at: int
    job_id: str
    data: str | None

    def newer_than(self, other: Latest | None) -> bool:
        # Ties broken by job id, so the answer does not depend on which partition came first.
        return other is None or (self.created_at, self.job_id) > (other.created_at, other.job_id)


@dataclass(slots=True)
class NameView:
    counts: Counter[str] = field(default_factory=Counter)  # jobs now in each state
    jobs: dict[str, int] = field(default_factory=dict)  # job id -> created_at
    active: set[str] = field(default_factory=set)
    latest: Latest | None = None
    retries: Counter[str] = field(default_factory=Counter)  # "<outcome>:<failures>" -> jobs


@dataclass(slots=True)
class FingerprintView:
    template: str
    error_type: str
    count: int = 0
    first_seen: int = 0
    last_seen: int = 0


@dataclass(slots=True)
class ReadModel:
    jobs: dict[str, JobView] = field(default_factory=dict)
    names: dict[str, NameView] = field(default_factory=dict)
    fingerprints: dict[str, FingerprintView] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)

    def apply(self, event: JobEvent, position: Position) -> bool:
        """Applies `event` unless `position` was applied already or the event is a re-sent copy
        (its event_id among its job's recent ones); True when it took effect. A new position
        advances the offset guard either way."""
        if position.offset <= self.offsets.get(position.source, -1):
            return False
        self.offsets[position.source] = position.offset
        return apply_job_event(self, event)

    def skip(self, position: Position) -> bool:
        """Records an undecodable record's position as applied (it changes nothing else)."""
        if position.offset <= self.offsets.get(position.source, -1):
            return False
        self.offsets[position.source] = position.offset
        return True

    def normalized(self) -> ReadModel:
        """The same model without zero counters: stores drop them, comparisons must too."""
        for view in self.names.values():
            view.counts = Counter({k: v for k, v in view.counts.items() if v})
            view.retries = Counter({k: v for k, v in view.retries.items() if v})
        return self


@dataclass(frozen=True, slots=True)
class Gap:
    """A batch that does not follow what the store recorded: records in between are missing."""

    source: str
    recorded: int  # highest offset the store applied (-1: none)
    first: int  # the batch's first offset of `source`


def first_gap(
    offsets: Mapping[str, int],
    positions: Iterable[Position],
    log_starts: Mapping[str, int] | None = None,
) -> Gap | None:
    """The first source whose first position in a batch lies beyond the store's recorded offset
    + 1, or None. A batch starting at or below it is a redelivery (each record a no-op until it
    reaches new ones); one starting at `log_starts[source]` is accepted whatever the store
    recorded, since nothing before it exists (retention deleted the head, or the caller read from
    the store's position and the log holds no records in between)."""
    seen: set[str] = set()
    for position in positions:
        source = position.source
        if source in seen:
            continue
        seen.add(source)
        recorded = offsets.get(source, -1)
        if position.offset <= recorded + 1:
            continue
        if log_starts is not None and position.offset <= log_starts.get(source, -1):
            continue
        return Gap(source, recorded, position.offset)
    return None


def apply_job_event(model: ReadModel, event: JobEvent) -> bool:
    """Folds `event` into `model`; False (and nothing changed) when it is a re-sent copy."""
    at = millis(event.occurred_at)
    job = model.jobs.get(event.job_id)
    if job is None:
        job = _create_job(model, event, at)
    elif event.event_id in job.recent_event_ids:
        return False
    name = model.names[job.job_name]
    old_state, new_state = job.state, state_after(event)
    kind = event.type
    if kind is JobEventType.ACTIVE:
        job.attempts = max(job.attempts, event.attempt)
        job.first_started_at = at if job.first_started_at is None else job.first_started_at
        job.last_started_at = at
        job.worker = event.worker
    elif kind is JobEventType.PROGRESS:
        job.progress = None if event.progress is None else repr(event.progress)
    elif kind.ends_attempt:
        _end_attempt(model, job, event, at)
        if new_state in TERMINAL:
            job.finished_at = at
            name.retries[f"{new_state}:{job.failures}"] += 1
    if new_state is JobState.ACTIVE:
        name.active.add(job.job_id)
    else:
        name.active.discard(job.job_id)
    if new_state is not old_state:
        name.counts[old_state] -= 1
        name.counts[new_state] += 1
        job.state = new_state
    job.updated_at = at
    job.recent_event_ids.append(event.event_id)
    if len(job.recent_event_ids) > EVENT_ID_WINDOW:
        del job.recent_event_ids[0]
    return True


def _create_job(model: ReadModel, event: JobEvent, at: int) -> JobView:
    # Immutable fields (id, name, queue, input data) are set here, once.
    job = JobView(
        job_id=event.job_id,
        job_name=event.job_name,
        created_at=at,
        queue=event.queue,
        data=(event.data or None) if event.type is JobEventType.QUEUED else None,
    )
    model.jobs[event.job_id] = job
    name = model.names.setdefault(job.job_name, NameView())
    name.jobs[job.job_id] = at
    name.counts[job.state] += 1
    latest = Latest(at, job.job_id, job.data)
    if latest.newer_than(name.latest):
        name.latest = latest
    return job


def _end_attempt(model: ReadModel, job: JobView, event: JobEvent, at: int) -> None:
    job.ended_at = at
    if event.type in (JobEventType.FAILED, JobEventType.STALLED):
        job.failures += 1
    if event.type is JobEventType.FAILED and event.error is not None:
        print_ = fingerprint(event.error)
        job.last_error_fingerprint = print_.sha256
        job.last_error_type = event.error.type
        seen = model.fingerprints.get(print_.sha256)
        if seen is None:
            seen = model.fingerprints[print_.sha256] = FingerprintView(
                print_.template, event.error.type, 0, at, at
            )
        seen.count += 1
        seen.first_seen = min(seen.first_seen, at)
        seen.last_seen = max(seen.last_seen, at)
