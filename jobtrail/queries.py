"""The query layer: one set of questions over the read models, asked by every front end (the HTTP
API in jobtrail/api.py; the CLI). Answers are pydantic models, so the API's OpenAPI schema and
its JSON come from the same types the CLI prints.

Network I/O happens in the store's setup, never here at import or construction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from jobtrail.errors import JobtrailError
from jobtrail.intervals import Proportion
from jobtrail.job_history import JobHistory, history_of
from jobtrail.retry_curve import DEFAULT_MIN_JOBS, DEFAULT_THRESHOLD, retry_curve
from jobtrail.times import utc_from_ms
from projections.model import JobView, NameView
from projections.ports import StoreUnavailableError
from projections.redis import RedisStore
from streams.settings import KafkaSettings

if TYPE_CHECKING:
    from projections.couchbase import CouchbaseStore

FINISHED = ("completed", "failed", "cancelled")


class NotFoundError(JobtrailError):
    """The read model has no such job name or job."""


class NotConfiguredError(JobtrailError):
    """The question needs a read model this deployment does not have."""


def _maybe_at(ms: int | None) -> datetime | None:
    return None if ms is None else utc_from_ms(ms)


class Rate(BaseModel):
    hits: int
    total: int
    rate: float | None = Field(description="hits / total; null without any")
    interval: tuple[float, float] | None = Field(description="95% Wilson interval")

    @classmethod
    def of(cls, chance: Proportion) -> Rate:
        return cls(hits=chance.hits, total=chance.total, rate=chance.rate,
                   interval=chance.interval)  # fmt: skip


class JobNameSummary(BaseModel):
    name: str
    jobs: int
    states: dict[str, int] = Field(description="jobs now in each state")
    active: int
    failure_rate: Rate = Field(description="finished jobs that ended failed (terminal)")


class Invocation(BaseModel):
    job_id: str
    created_at: datetime
    data: str | None


class JobNameDetail(JobNameSummary):
    active_job_ids: list[str]
    latest: Invocation | None = Field(description="the newest job, with its input data")


class JobsPage(BaseModel):
    name: str
    page: int
    size: int
    state: str | None = Field(description="only jobs now in this state; null: all")
    total: int
    job_ids: list[str] = Field(description="newest first")


class RetryPoint(BaseModel):
    failed_at_least: int
    success: Rate = Field(description="jobs that failed at least k times, and how many completed")


class RetryCurve(BaseModel):
    name: str
    threshold: float
    min_jobs: int
    suggested_limit: int | None = Field(description="give up after this many failed attempts")
    evidence: str
    points: list[RetryPoint]


class Job(BaseModel):
    job_id: str
    job_name: str
    queue: str | None
    state: str
    attempts: int
    failures: int
    worker: str | None
    progress: str | None
    data: str | None
    created_at: datetime
    first_started_at: datetime | None
    last_started_at: datetime | None
    ended_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    last_error_fingerprint: str | None
    last_error_type: str | None

    @classmethod
    def of(cls, view: JobView) -> Job:
        return cls(
            job_id=view.job_id, job_name=view.job_name, queue=view.queue, state=str(view.state),
            attempts=view.attempts, failures=view.failures, worker=view.worker,
            progress=view.progress, data=view.data, created_at=utc_from_ms(view.created_at),
            first_started_at=_maybe_at(view.first_started_at),
            last_started_at=_maybe_at(view.last_started_at), ended_at=_maybe_at(view.ended_at),
            finished_at=_maybe_at(view.finished_at), updated_at=utc_from_ms(view.updated_at),
            last_error_fingerprint=view.last_error_fingerprint,
            last_error_type=view.last_error_type,
        )  # fmt: skip


class JobDetail(Job):
    history: JobHistory | None = Field(description="events and attempts (Couchbase read model)")
    history_unavailable: str | None = Field(description="why there is no history, if there is none")


def failure_rate(states: Mapping[str, int]) -> Proportion:
    return Proportion(states.get("failed", 0), sum(states.get(s, 0) for s in FINISHED))


def _summary(name: str, view: NameView) -> JobNameSummary:
    states = {state: count for state, count in sorted(view.counts.items()) if count}
    return JobNameSummary(name=name, jobs=sum(states.values()), states=states,
                          active=len(view.active),
                          failure_rate=Rate.of(failure_rate(states)))  # fmt: skip


class DeadLetterCount(BaseModel):
    topic: str
    letters: int
    truncated: int = Field(description="letters whose value was cut to fit the DLQ")
    by_reason: dict[str, int]


class Queries:
    """Every question the front ends ask, over the Redis read model (and, for dead letters, the
    DLQ topics themselves)."""

    def __init__(
        self,
        store: RedisStore,
        kafka: KafkaSettings,
        couchbase: Callable[[], CouchbaseStore] | None = None,
    ) -> None:
        self.store = store
        self.kafka = kafka
        # Opened on first use: a Couchbase that is down fails the history question only.
        self._open_couchbase = couchbase
        self._couchbase: CouchbaseStore | None = None

    def dead_letters(self) -> list[DeadLetterCount]:
        """Each DLQ read to its end."""
        from streams.dead_letters import dlq_topics, summarize

        return [
            DeadLetterCount(topic=s.topic, letters=s.total, truncated=s.truncated,
                            by_reason=dict(sorted(s.by_reason.items())))
            for s in (summarize(self.kafka, topic) for topic in dlq_topics(self.kafka))
        ]  # fmt: skip

    def job_names(self) -> list[JobNameSummary]:
        return [_summary(name, view) for name, view in self.store.name_views().items()]

    def job_name(self, name: str) -> JobNameDetail:
        view = self._view(name)
        latest = view.latest
        return JobNameDetail(
            **_summary(name, view).model_dump(),
            active_job_ids=sorted(view.active),
            latest=None
            if latest is None
            else Invocation(
                job_id=latest.job_id, created_at=utc_from_ms(latest.created_at), data=latest.data
            ),
        )

    def jobs(self, name: str, page: int, size: int, state: str | None = None) -> JobsPage:
        summary = _summary(name, self._view(name))
        total = summary.jobs if state is None else summary.states.get(state, 0)
        return JobsPage(name=name, page=page, size=size, state=state, total=total,
                        job_ids=self.store.jobs_page(name, page, size, state))  # fmt: skip

    def retries(
        self, name: str, threshold: float = DEFAULT_THRESHOLD, min_jobs: int = DEFAULT_MIN_JOBS
    ) -> RetryCurve:
        view = self._view(name)
        curve = retry_curve(view.retries, threshold=threshold, min_jobs=min_jobs)
        return RetryCurve(
            name=name, threshold=threshold, min_jobs=min_jobs,
            suggested_limit=curve.suggested_limit, evidence=curve.evidence,
            points=[RetryPoint(failed_at_least=p.failed_at_least, success=Rate.of(p.chance))
                    for p in curve.points],
        )  # fmt: skip

    def job(self, job_id: str) -> Job:
        view = self.store.job(job_id)
        if view is None:
            raise NotFoundError(f"no job {job_id!r} in the read model")
        return Job.of(view)

    def job_detail(self, job_id: str) -> JobDetail:
        """The job's state (Redis) and its full history (Couchbase); the state alone, with the
        reason, when the Couchbase read model cannot answer."""
        job = self.job(job_id)
        try:
            history, reason = self.history(job_id), None
        except (NotConfiguredError, NotFoundError, StoreUnavailableError) as exc:
            history, reason = None, str(exc)
        return JobDetail(**job.model_dump(), history=history, history_unavailable=reason)

    def history(self, job_id: str) -> JobHistory:
        """Every event the Couchbase job document keeps, and the attempts derived from them."""
        if self._couchbase is None:
            if self._open_couchbase is None:
                raise NotConfiguredError("a job's history is read from the Couchbase projection")
            store = self._open_couchbase()
            store.setup()
            self._couchbase = store
        document = self._couchbase.job_document(job_id, self._couchbase.current_generation())
        if document is None:
            raise NotFoundError(f"no job {job_id!r} in the Couchbase read model")
        return history_of(document)

    def _view(self, name: str) -> NameView:
        """A job name's counters (not its job index); NotFoundError for a name never seen."""
        view = self.store.known_name_view(name)
        if view is None:
            raise NotFoundError(f"no job name {name!r} in the read model")
        return view
