"""The analytics read model and the pure fold that defines it.

Three topics feed it, each record applied at most once (the offset guard per source partition,
as in projections/model.py):
- job-events: per (queue, job name) the jobs in each state, waiting times (queued to first
  start), run times (start to end of each attempt that completed or failed) and jobs finished per
  event-time minute; per error fingerprint its template, a sample message, count, first and last
  seen, job names and the latest jobs that hit it; the jobs still open (queued, active, retrying
  or stalled) with the event time they entered that state; and the log's progress, the latest
  event time applied. A re-sent event (its event_id among its job's last `EVENT_ID_WINDOW`)
  changes nothing, as in the job read model.
- attempt-outcomes: failure rate against concurrency (projections/concurrency.py), each
  (job, attempt) counted once.
- error-vectors: each fingerprint's vector per model (the vector cache the categories read).

Replay gives the same state whatever order the partitions interleave in: every aggregate here is
a sum, a min or max, or a top-N under a total order, and a job's own events come from one
partition, in order. Nothing reads a clock: ages (stuck jobs) are measured against `progress_ms`.

The store loads only the entities a batch touches (`Touched`), folds the batch over them with
these same functions, and writes back what changed; the tests fold whole logs in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from processors.fingerprint import fingerprint
from projections.analytics import histogram
from projections.concurrency import DEFAULT_MAX_LEVEL, ConcurrencyModel
from projections.model import EVENT_ID_WINDOW, TERMINAL, JobState, Position, state_after
from schemas.derived import AttemptOutcome, ErrorVector
from schemas.job_event import JobEvent, JobEventType, millis

AnalyticsRecord = JobEvent | AttemptOutcome | ErrorVector

# States in which a job waits for something to happen: the candidates for "stuck".
OPEN = frozenset({JobState.QUEUED, JobState.ACTIVE, JobState.RETRYING, JobState.STALLED})
LATEST_JOBS = 10  # per error: the latest distinct jobs that hit it
SAMPLE_CHARS = 1000  # per error: the sample message's bound
MINUTES_KEPT = 120  # per queue: finished jobs per minute, for the last two hours of event time
MINUTE_MS = 60_000
HOURS_KEPT = 168  # per error: occurrences per event-time hour, for the last week
HOUR_MS = 3_600_000


@dataclass(slots=True)
class JobTrack:
    """What the analytics need to remember of one job between its events."""

    job_name: str
    queue: str
    state: JobState | None = None  # None until the first event that sets one
    since: int = 0  # event time the job entered `state`
    queued_at: int | None = None
    started: bool = False  # an attempt started at least once (waiting time is counted once)
    attempt_started_at: int | None = None  # start of the running attempt
    recent_event_ids: list[str] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.state in OPEN


@dataclass(slots=True)
class QueueStats:
    """One (queue, job name): jobs by state, waiting and run times, jobs finished per minute."""

    states: dict[str, int] = field(default_factory=dict)
    waiting: histogram.Histogram = field(default_factory=dict)
    running: histogram.Histogram = field(default_factory=dict)
    finished_per_minute: dict[int, int] = field(default_factory=dict)  # minute (ms) -> jobs


@dataclass(slots=True)
class ErrorStats:
    template: str = ""
    error_type: str = ""
    sample: str = ""
    sample_at: int = 0  # the sample is the message of the earliest occurrence (ties: job id)
    sample_job: str = ""
    count: int = 0
    first_seen: int = 0
    last_seen: int = 0
    job_names: dict[str, int] = field(default_factory=dict)
    latest_jobs: dict[str, int] = field(default_factory=dict)  # job id -> its latest hit (ms)
    models: dict[str, int] = field(default_factory=dict)  # embedding model -> dimension
    hours: dict[int, int] = field(default_factory=dict)  # event-time hour (ms) -> occurrences


def queue_key(queue: str, job_name: str) -> str:
    return f"{queue}\x1f{job_name}"


def split_queue_key(key: str) -> tuple[str, str]:
    queue, _, job_name = key.partition("\x1f")
    return queue, job_name


@dataclass(slots=True)
class AnalyticsModel:
    max_level: int = DEFAULT_MAX_LEVEL
    jobs: dict[str, JobTrack] = field(default_factory=dict)
    concurrency: ConcurrencyModel = field(default_factory=ConcurrencyModel)
    errors: dict[str, ErrorStats] = field(default_factory=dict)
    queues: dict[str, QueueStats] = field(default_factory=dict)
    vectors: dict[tuple[str, str], tuple[float, ...]] = field(default_factory=dict)
    progress_ms: int = 0
    offsets: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.concurrency.max_level = self.max_level

    def apply(self, record: AnalyticsRecord | None, position: Position) -> bool:
        """Applies `record` unless `position` was applied already; None (undecodable, or
        breaking the contract) only advances the guard. True when the record took effect."""
        if position.offset <= self.offsets.get(position.source, -1):
            return False
        self.offsets[position.source] = position.offset
        if isinstance(record, JobEvent):
            return apply_job_event(self, record)
        if isinstance(record, AttemptOutcome):
            return self.concurrency.apply(record)
        if isinstance(record, ErrorVector):
            apply_error_vector(self, record)
            return True
        return False

    def open_jobs(self) -> dict[str, JobTrack]:
        return {job_id: track for job_id, track in self.jobs.items() if track.open}


def fold(
    items: Iterable[tuple[Position, AnalyticsRecord | None]], max_level: int = DEFAULT_MAX_LEVEL
) -> AnalyticsModel:
    model = AnalyticsModel(max_level)
    for position, record in items:
        model.apply(record, position)
    return model


@dataclass(frozen=True, slots=True)
class Touched:
    """The entities a batch reads and may change: what a store loads before folding it."""

    jobs: frozenset[str]
    counted_jobs: frozenset[str]  # jobs whose outcomes the batch counts
    job_names: frozenset[str]  # concurrency per job name
    workers: frozenset[str]
    errors: frozenset[str]

    @staticmethod
    def of(records: Iterable[AnalyticsRecord | None]) -> Touched:
        jobs: set[str] = set()
        counted: set[str] = set()
        names: set[str] = set()
        workers: set[str] = set()
        errors: set[str] = set()
        for record in records:
            if isinstance(record, JobEvent):
                jobs.add(record.job_id)
                if record.type is JobEventType.FAILED and record.error is not None:
                    errors.add(fingerprint(record.error).sha256)
            elif isinstance(record, AttemptOutcome):
                counted.add(record.job_id)
                names.add(record.job_name)
                if record.worker is not None:
                    workers.add(record.worker)
            elif isinstance(record, ErrorVector):
                errors.add(record.fingerprint)
        return Touched(*(frozenset(s) for s in (jobs, counted, names, workers, errors)))


def queues_touched(model: AnalyticsModel, records: Iterable[AnalyticsRecord | None]) -> set[str]:
    """The (queue, job name) keys a batch's job events change, once `model.jobs` holds the
    batch's jobs (a job keeps the queue of its first event)."""
    keys: set[str] = set()
    for record in records:
        if isinstance(record, JobEvent):
            track = model.jobs.get(record.job_id)
            if track is not None:
                keys.add(queue_key(track.queue, track.job_name))
            else:
                keys.add(queue_key(record.queue or "", record.job_name))
    return keys


def apply_job_event(model: AnalyticsModel, event: JobEvent) -> bool:
    track = model.jobs.get(event.job_id)
    if track is None:
        track = model.jobs[event.job_id] = JobTrack(event.job_name, event.queue or "")
    elif event.event_id in track.recent_event_ids:
        return False
    track.recent_event_ids.append(event.event_id)
    if len(track.recent_event_ids) > EVENT_ID_WINDOW:
        del track.recent_event_ids[0]
    at = millis(event.occurred_at)
    model.progress_ms = max(model.progress_ms, at)
    stats = model.queues.setdefault(queue_key(track.queue, track.job_name), QueueStats())
    kind = event.type
    if kind is JobEventType.QUEUED and track.queued_at is None:
        track.queued_at = at
    elif kind is JobEventType.ACTIVE:
        if not track.started and track.queued_at is not None:
            histogram.add(stats.waiting, at - track.queued_at)
        track.started = True
        track.attempt_started_at = at
    elif kind.ends_attempt:
        started = track.attempt_started_at
        if kind in (JobEventType.COMPLETED, JobEventType.FAILED) and started is not None:
            histogram.add(stats.running, at - started)
        track.attempt_started_at = None
        if kind is JobEventType.FAILED and event.error is not None:
            _count_error(model, event, at)
    new_state = state_after(event)
    if new_state is not track.state:
        if track.state is not None:
            _add(stats.states, track.state.value, -1)
        _add(stats.states, new_state.value, 1)
        if new_state in TERMINAL and track.state not in TERMINAL:
            _count_finished(stats, at)
        track.state = new_state
        track.since = at
    return True


def _count_finished(stats: QueueStats, at: int) -> None:
    _count_in_window(stats.finished_per_minute, at, MINUTE_MS, MINUTES_KEPT)


def _count_in_window(buckets: dict[int, int], at: int, width_ms: int, kept: int) -> None:
    """One more in `at`'s bucket, keeping the `kept` buckets up to the latest one seen: the result
    is the same whatever order the buckets arrive in (an old bucket dropped now would have been
    dropped later anyway)."""
    bucket = at - at % width_ms
    buckets[bucket] = buckets.get(bucket, 0) + 1
    horizon = max(buckets) - (kept - 1) * width_ms
    for old in [b for b in buckets if b < horizon]:
        del buckets[old]


def _count_error(model: AnalyticsModel, event: JobEvent, at: int) -> None:
    assert event.error is not None
    print_ = fingerprint(event.error)
    stats = model.errors.setdefault(print_.sha256, ErrorStats())
    if stats.count == 0:
        stats.template, stats.error_type = print_.template, event.error.type
        stats.first_seen = stats.last_seen = at
    stats.count += 1
    stats.first_seen = min(stats.first_seen, at)
    stats.last_seen = max(stats.last_seen, at)
    _add(stats.job_names, event.job_name, 1)
    _count_in_window(stats.hours, at, HOUR_MS, HOURS_KEPT)
    if not stats.sample or (at, event.job_id) < (stats.sample_at, stats.sample_job):
        stats.sample = event.error.message[:SAMPLE_CHARS]
        stats.sample_at, stats.sample_job = at, event.job_id
    latest = stats.latest_jobs
    latest[event.job_id] = max(latest.get(event.job_id, at), at)
    if len(latest) > LATEST_JOBS:
        kept = sorted(latest.items(), key=lambda item: (item[1], item[0]))[-LATEST_JOBS:]
        stats.latest_jobs = dict(kept)


def apply_error_vector(model: AnalyticsModel, vector: ErrorVector) -> None:
    stats = model.errors.setdefault(vector.fingerprint, ErrorStats())
    stats.models[vector.model] = vector.dimension
    model.vectors[(vector.fingerprint, vector.model)] = vector.vector


def _add(counts: dict[str, int], key: str, delta: int) -> None:
    value = counts.get(key, 0) + delta
    if value:
        counts[key] = value
    else:
        counts.pop(key, None)
