"""A discrete-event simulation of job systems, emitting JobEvents in event-time order.

Jobs arrive at random (Poisson), wait in one FIFO queue, and run on workers with a fixed number
of concurrency slots. An attempt may progress, complete, fail (more often when its worker is
busy), stall (the stall detector reports it after a timeout) or be cancelled. Failed and stalled
attempts are retried after exponential backoff until `max_attempts`; non-retryable errors fail
terminally at once.

Everything is drawn from one seeded `random.Random`, and event time is simulated time from
`start`: the same configuration and seed always yield the same events, byte for byte.
"""

from __future__ import annotations

import heapq
import itertools
import random
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum

from schemas.job_event import JobError, JobEvent, JobEventType
from streams.demo.errors import draw_error
from streams.demo.profiles import PROFILES, JobProfile

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
TEMPLATE_ATTRIBUTE = "demo.template"


@dataclass(frozen=True, slots=True)
class WorkloadConfig:
    jobs: int | None = 1000  # stop creating jobs after this many (all of them run to the end)
    events: int | None = None  # stop after this many events, even mid-lifecycle
    workers: int = 8
    slots: int = 4  # concurrency per worker
    arrivals_per_s: float = 3.0  # mean job arrival rate, in simulated time (~85% busy)
    stall_rate: float = 0.01
    stall_timeout_s: float = 30.0
    cancel_rate: float = 0.005
    start: datetime = DEFAULT_START
    profiles: tuple[JobProfile, ...] = PROFILES


class _Step(IntEnum):
    """Kinds of scheduled work; the value orders same-instant steps deterministically."""

    END = 0
    PROGRESS = 1
    RETRY = 2
    ARRIVE = 3


@dataclass(slots=True)
class _Job:
    job_id: str
    profile: JobProfile
    context: dict[str, str]  # tracing and tenancy attributes, as SDKs attach them
    attempt: int = 0


@dataclass(slots=True)
class _Attempt:
    job: _Job
    worker: int
    outcome: JobEventType
    error: JobError | None = None
    template_id: str | None = None
    retry: bool = False


@dataclass(slots=True)
class _State:
    now: float = 0.0
    created: int = 0
    emitted: int = 0
    busy: list[int] = field(default_factory=list)
    waiting: deque[_Job] = field(default_factory=deque)


class Workload:
    """Iterate over `events()` to run the simulation."""

    def __init__(self, config: WorkloadConfig, seed: int = 0) -> None:
        self.config = config
        self._rng = random.Random(seed)
        self._weights = [p.weight for p in config.profiles]
        self._heap: list[tuple[float, int, int, object]] = []
        self._sequence = itertools.count()
        self._state = _State(busy=[0] * config.workers)

    # -- scheduling ----------------------------------------------------------------------------

    def _schedule(self, at: float, step: _Step, payload: object) -> None:
        heapq.heappush(self._heap, (at, step, next(self._sequence), payload))

    def _event(
        self,
        job: _Job,
        kind: JobEventType,
        attributes: dict[str, str] | None = None,
        **fields: object,
    ) -> JobEvent:
        self._state.emitted += 1
        return JobEvent(
            event_id=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            job_id=job.job_id,
            job_name=job.profile.name,
            queue=job.profile.queue,
            type=kind,
            attempt=max(job.attempt, 1),
            max_attempts=job.profile.max_attempts,
            # Whole milliseconds: the wire resolution, so decode(encode(event)) == event.
            occurred_at=self.config.start + timedelta(milliseconds=round(self._state.now * 1000)),
            source="demo",
            attributes={**job.context, **attributes} if attributes else job.context,
            **fields,  # type: ignore[arg-type]
        )

    # -- the simulation ------------------------------------------------------------------------

    def events(self) -> Iterator[JobEvent]:
        limit = self.config.events
        for event in self._run():
            yield event
            if limit is not None and self._state.emitted >= limit:
                return

    def _run(self) -> Iterator[JobEvent]:
        self._schedule(0.0, _Step.ARRIVE, None)
        while self._heap:
            at, step, _, payload = heapq.heappop(self._heap)
            self._state.now = at
            if step is _Step.ARRIVE:
                yield from self._arrive()
            elif step is _Step.RETRY:
                assert isinstance(payload, _Job)
                self._state.waiting.append(payload)
            elif step is _Step.PROGRESS:
                assert isinstance(payload, tuple)
                attempt, fraction = payload
                yield self._event(
                    attempt.job, JobEventType.PROGRESS, worker=_worker(attempt), progress=fraction
                )
            else:
                assert isinstance(payload, _Attempt)
                yield from self._end(payload)
            yield from self._dispatch()

    def _arrive(self) -> Iterator[JobEvent]:
        config, state, rng = self.config, self._state, self._rng
        if config.jobs is not None and state.created >= config.jobs:
            return
        state.created += 1
        profile = rng.choices(config.profiles, self._weights)[0]
        job = _Job(
            job_id=f"job-{state.created:08d}-{rng.getrandbits(24):06x}",
            profile=profile,
            context={
                "trace_id": f"{rng.getrandbits(128):032x}",
                "tenant": f"tenant-{rng.randint(1, 40):03d}",
                "region": rng.choice(("eu-west-1", "us-east-1", "ap-south-1")),
                "release": f"v2026.{rng.randint(1, 11)}.{rng.randint(0, 30)}",
                "host": f"ip-10-0-{rng.randint(0, 15)}-{rng.randint(2, 254)}",
            },
        )
        yield self._event(job, JobEventType.QUEUED, data=profile.input_json(rng))
        state.waiting.append(job)
        self._schedule(state.now + rng.expovariate(config.arrivals_per_s), _Step.ARRIVE, None)

    def _dispatch(self) -> Iterator[JobEvent]:
        """Starts waiting jobs on the least busy workers while slots are free."""
        state, config = self._state, self.config
        while state.waiting:
            worker = min(range(config.workers), key=lambda w: (state.busy[w], w))
            if state.busy[worker] >= config.slots:
                return
            job = state.waiting.popleft()
            job.attempt += 1
            state.busy[worker] += 1
            yield self._event(job, JobEventType.ACTIVE, worker=_worker_name(worker))
            self._plan_attempt(job, worker)

    def _plan_attempt(self, job: _Job, worker: int) -> None:
        """Decides now how the attempt will end, and schedules its progress and its end."""
        config, rng, profile = self.config, self._rng, job.profile
        duration = rng.lognormvariate(0.0, profile.sigma) * profile.median_s
        load = self._state.busy[worker] / config.slots
        roll = rng.random()
        attempt = _Attempt(job, worker, JobEventType.COMPLETED)
        if roll < config.stall_rate:
            attempt.outcome, attempt.retry = JobEventType.STALLED, True
            duration = config.stall_timeout_s
        elif roll < config.stall_rate + config.cancel_rate:
            attempt.outcome = JobEventType.CANCELLED
            duration *= rng.random()
        elif rng.random() < profile.failure_rate + profile.load_sensitivity * load:
            sample = draw_error(rng, profile.name, profile.families)
            attempt.outcome, attempt.error = JobEventType.FAILED, sample.error
            attempt.template_id, attempt.retry = sample.template_id, sample.retryable
            duration *= rng.uniform(0.05, 1.0)  # failures tend to come early
        if attempt.retry and job.attempt >= profile.max_attempts:
            attempt.retry = False
        end = self._state.now + duration
        if attempt.outcome is JobEventType.COMPLETED:
            for step in range(1, profile.progress_steps + 1):
                fraction = step / (profile.progress_steps + 1)
                at = self._state.now + duration * fraction
                self._schedule(at, _Step.PROGRESS, (attempt, round(fraction * 100, 1)))
        self._schedule(end, _Step.END, attempt)

    def _end(self, attempt: _Attempt) -> Iterator[JobEvent]:
        job, state, rng = attempt.job, self._state, self._rng
        state.busy[attempt.worker] -= 1
        worker = _worker(attempt)
        if attempt.outcome is JobEventType.COMPLETED:
            result = f'{{"ok":true,"items":{rng.randint(1, 500)}}}'
            yield self._event(job, JobEventType.COMPLETED, worker=worker, result=result)
        elif attempt.outcome is JobEventType.FAILED:
            assert attempt.template_id is not None
            yield self._event(
                job,
                JobEventType.FAILED,
                worker=worker,
                error=attempt.error,
                will_retry=attempt.retry,
                attributes={TEMPLATE_ATTRIBUTE: attempt.template_id},
            )
        else:
            yield self._event(job, attempt.outcome, worker=worker)
        if attempt.retry:
            delay = job.profile.backoff_s * 2 ** (job.attempt - 1) * rng.uniform(0.8, 1.2)
            self._schedule(state.now + delay, _Step.RETRY, job)


def _worker(attempt: _Attempt) -> str:
    return _worker_name(attempt.worker)


def _worker_name(index: int) -> str:
    return f"worker-{index + 1:02d}"
