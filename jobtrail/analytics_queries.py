"""Questions over the analytics read model (projections/analytics/): failure rate against
concurrency, errors by fingerprint, stuck jobs, queues. Pydantic answers, shared by the HTTP API
and the CLI like those of jobtrail/queries.py.

Stuck jobs are judged in event time: a job's age is the log's progress (the latest event time the
model applied) minus when it entered its state, so a replay lists the same jobs. Its threshold is
`multiple` x its job name's p99 (of waiting time for a queued or retrying job, of run time for an
active one), at least `min_s`; a name with fewer than `min_samples` of those uses `timeout_s`, as
does every name when `fixed` is set. A stalled job (the worker lost it) is listed at any age.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobtrail.concurrency_curve import concurrency_curve
from jobtrail.errors import JobtrailError
from jobtrail.queries import Rate
from jobtrail.times import utc_from_ms
from projections.analytics import histogram
from projections.analytics.model import MINUTE_MS, QueueStats, split_queue_key
from projections.analytics.redis_store import (
    AnalyticsRedisStore,
    decode_vector,
    error_from_json,
    queue_from_json,
    track_from_json,
)
from projections.concurrency import LevelCounts
from projections.model import JobState

THROUGHPUT_MINUTES = 10  # throughput: jobs finished per minute over the last 10 event-time minutes


class NotInModelError(JobtrailError):
    """The analytics model has no such job name, worker or fingerprint."""


class GapSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBTRAIL_GAPS_", frozen=True, extra="ignore")

    multiple: float = Field(default=3.0, gt=0, description="Threshold: this many x the name's p99")
    min_s: float = Field(default=60.0, ge=0, description="The lowest threshold")
    min_samples: int = Field(
        default=20, ge=1, description="Fewer timings than this: the fixed timeout applies"
    )
    timeout_s: float = Field(default=3600.0, gt=0, description="The fixed timeout")
    fixed: bool = Field(default=False, description="Use the fixed timeout for every job name")


class LevelAnswer(BaseModel):
    level: int
    label: str = Field(description='"3", or "32+" for the top bucket')
    failure_rate: Rate = Field(description="hits: failed or stalled attempts")


class ConcurrencyAnswer(BaseModel):
    by: Literal["job_name", "worker"]
    key: str
    max_level: int
    levels: list[LevelAnswer]
    baseline: LevelAnswer | None = Field(description="level 1: attempts that ran alone")
    overall: Rate


class ErrorSummary(BaseModel):
    fingerprint: str
    template: str
    error_type: str
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    job_names: dict[str, int]
    models: dict[str, int] = Field(description="embedding model -> vector dimension")


class JobHit(BaseModel):
    job_id: str
    at: datetime


class ErrorDetail(ErrorSummary):
    sample: str
    latest_jobs: list[JobHit]
    vectors: dict[str, list[float]] | None = Field(description="per model, when asked for")


class ErrorsPage(BaseModel):
    page: int
    size: int
    job_name: str | None = Field(description="only errors of this job name, ranked by its count")
    since: datetime | None = Field(description="only errors seen at or after this time")
    total: int
    errors: list[ErrorSummary] = Field(description="most frequent first")


class StuckJob(BaseModel):
    job_id: str
    job_name: str
    queue: str
    state: str
    since: datetime
    age_s: float
    threshold_s: float | None = Field(description="null for a stalled job")
    reason: str


class GapsAnswer(BaseModel):
    progress: datetime | None = Field(description="the latest event time applied")
    jobs: list[StuckJob] = Field(description="oldest first")
    open_jobs: int = Field(description="jobs queued, active, retrying or stalled now")


class Quantiles(BaseModel):
    p50: int | None
    p95: int | None
    p99: int | None

    @classmethod
    def of(cls, hist: histogram.Histogram) -> Quantiles:
        return cls(p50=histogram.quantile_ms(hist, 0.5), p95=histogram.quantile_ms(hist, 0.95),
                   p99=histogram.quantile_ms(hist, 0.99))  # fmt: skip


class QueueAnswer(BaseModel):
    queue: str
    job_name: str
    waiting: int = Field(description="queued, retrying or stalled (waiting for a worker)")
    active: int
    completed: int
    failed: int
    cancelled: int
    throughput_per_min: float = Field(description="jobs finished per minute, last 10 minutes")
    waiting_time_ms: Quantiles = Field(description="queued to first start")
    run_time_ms: Quantiles = Field(description="start to end of completed or failed attempts")


class AnalyticsQueries:
    def __init__(self, store: AnalyticsRedisStore, gaps: GapSettings | None = None) -> None:
        self.store = store
        self.gaps_settings = gaps or GapSettings()

    # -- concurrency -----------------------------------------------------------------------------

    def concurrency(self, *, job_name: str | None = None,
                    worker: str | None = None) -> ConcurrencyAnswer:  # fmt: skip
        by: Literal["job_name", "worker"] = "worker" if worker is not None else "job_name"
        key = worker if worker is not None else job_name or ""
        doc = self.store.entity(f"conc:{'worker' if by == 'worker' else 'name'}:{key}")
        if doc is None:
            raise NotInModelError(f"no attempt outcomes for {by.replace('_', ' ')} {key!r}")
        levels = {int(level): LevelCounts(*counts) for level, counts in doc.items()}
        curve = concurrency_curve(levels, self.store.max_level)

        def level(point: Any) -> LevelAnswer:
            return LevelAnswer(level=point.level, label=point.label,
                               failure_rate=Rate.of(point.failure))  # fmt: skip

        return ConcurrencyAnswer(
            by=by, key=key, max_level=self.store.max_level,
            levels=[level(p) for p in curve.points],
            baseline=None if curve.baseline is None else level(curve.baseline),
            overall=Rate.of(curve.overall),
        )  # fmt: skip

    # -- errors ----------------------------------------------------------------------------------

    def errors(
        self,
        page: int = 0,
        size: int = 50,
        *,
        job_name: str | None = None,
        since: datetime | None = None,
    ) -> ErrorsPage:
        """Distinct errors, most frequent first (within `job_name`: by its count there), only
        those seen at or after `since` when given."""
        ns = self.store.current()
        client = self.store.client
        ranking = ns + ("errors" if job_name is None else f"errors:name:{job_name}")
        if since is None:
            total = int(client.zcard(ranking))
            window = client.zrevrange(ranking, page * size, (page + 1) * size - 1)
            prints = [str(p) for p in window]
        else:
            since_ms = int(since.timestamp() * 1000)
            recent = [
                str(p) for p in client.zrangebyscore(ns + "errors:last-seen", since_ms, "+inf")
            ]
            scores = client.zmscore(ranking, recent) if recent else []
            ranked = sorted(((-score, fp) for fp, score in zip(recent, scores, strict=True)
                             if score is not None))  # fmt: skip
            total = len(ranked)
            prints = [fp for _, fp in ranked[page * size : (page + 1) * size]]
        docs = client.mget([f"{ns}error:{fp}" for fp in prints]) if prints else []
        summaries = [
            _summary(fp, error_from_json(_json(raw)))
            for fp, raw in zip(prints, docs, strict=True)
            if raw is not None
        ]
        return ErrorsPage(page=page, size=size, job_name=job_name, since=since, total=total,
                          errors=summaries)  # fmt: skip

    def error(self, fp: str, *, vectors: bool = False) -> ErrorDetail:
        doc = self.store.entity(f"error:{fp}")
        if doc is None:
            raise NotInModelError(f"no error with fingerprint {fp!r}")
        stats = error_from_json(doc)
        found: dict[str, list[float]] | None = None
        if vectors:
            ns = self.store.current()
            found = {}
            for model in sorted(stats.models):
                raw = self.store.client.get(f"{ns}vector:{fp}:{model}")
                if raw is not None:
                    found[model] = list(decode_vector(str(raw)))
        latest = sorted(
            stats.latest_jobs.items(), key=lambda item: (item[1], item[0]), reverse=True
        )
        return ErrorDetail(
            **_summary(fp, stats).model_dump(), sample=stats.sample,
            latest_jobs=[JobHit(job_id=job, at=utc_from_ms(at)) for job, at in latest],
            vectors=found,
        )  # fmt: skip

    # -- queues and stuck jobs -------------------------------------------------------------------

    def queues(self) -> list[QueueAnswer]:
        answers = []
        for key, stats in self._queue_stats(self.store.current()):
            queue, name = split_queue_key(key)
            states = stats.states
            minutes = stats.finished_per_minute
            recent = 0
            if minutes:
                horizon = max(minutes) - (THROUGHPUT_MINUTES - 1) * MINUTE_MS
                recent = sum(n for minute, n in minutes.items() if minute >= horizon)
            answers.append(QueueAnswer(
                queue=queue, job_name=name,
                waiting=sum(states.get(s, 0) for s in ("queued", "retrying", "stalled")),
                active=states.get("active", 0), completed=states.get("completed", 0),
                failed=states.get("failed", 0), cancelled=states.get("cancelled", 0),
                throughput_per_min=recent / THROUGHPUT_MINUTES,
                waiting_time_ms=Quantiles.of(stats.waiting),
                run_time_ms=Quantiles.of(stats.running),
            ))  # fmt: skip
        return answers

    def throughput(self, job_name: str | None = None) -> list[tuple[datetime, int]]:
        """Jobs finished per event-time minute (the last two hours the model keeps), all queues
        summed, of one job name when given; oldest first."""
        minutes: dict[int, int] = {}
        for key, stats in self._queue_stats(self.store.current()):
            if job_name is not None and split_queue_key(key)[1] != job_name:
                continue
            for minute, count in stats.finished_per_minute.items():
                minutes[minute] = minutes.get(minute, 0) + count
        return [(utc_from_ms(minute), minutes[minute]) for minute in sorted(minutes)]

    def gaps(self, limit: int = 500) -> GapsAnswer:
        ns = self.store.current()
        client = self.store.client
        progress = int(client.get(ns + "progress") or 0)
        open_jobs = int(client.zcard(ns + "open"))
        if not progress:
            return GapsAnswer(progress=None, jobs=[], open_jobs=open_jobs)
        thresholds = self._thresholds_ms(ns)
        settings = self.gaps_settings
        # Every open job is read: a stalled one is stuck at any age.
        open_ids = [str(j) for j in client.zrange(ns + "open", 0, -1)]
        stuck: list[StuckJob] = []
        for job_id, raw in self._tracks(ns, open_ids):
            track = track_from_json(_json(raw)["track"])
            age_ms = progress - track.since
            if track.state is JobState.STALLED:
                stuck.append(_stuck(job_id, track, age_ms, None, "stalled: its worker lost it"))
                continue
            phase = "running" if track.state is JobState.ACTIVE else "waiting"
            limit_ms = thresholds.get((track.job_name, phase), settings.timeout_s * 1000)
            if age_ms > limit_ms:
                stuck.append(_stuck(job_id, track, age_ms, limit_ms,
                                    f"{track.state} for longer than its threshold"))  # fmt: skip
        stuck.sort(key=lambda job: (job.since, job.job_id))
        return GapsAnswer(progress=utc_from_ms(progress), jobs=stuck[:limit], open_jobs=open_jobs)

    def _tracks(self, ns: str, job_ids: list[str]) -> list[tuple[str, str]]:
        found = []
        for start in range(0, len(job_ids), 1000):
            chunk = job_ids[start : start + 1000]
            values = self.store.client.mget([f"{ns}job:{j}" for j in chunk])
            found += [(j, str(v)) for j, v in zip(chunk, values, strict=True) if v is not None]
        return found

    def _thresholds_ms(self, ns: str) -> dict[tuple[str, str], float]:
        """(job name, "waiting" | "running") -> threshold in ms, from the queues' histograms."""
        settings = self.gaps_settings
        if settings.fixed:
            return {}
        per_name: dict[tuple[str, str], list[histogram.Histogram]] = {}
        for key, stats in self._queue_stats(ns):
            name = split_queue_key(key)[1]
            per_name.setdefault((name, "waiting"), []).append(stats.waiting)
            per_name.setdefault((name, "running"), []).append(stats.running)
        thresholds: dict[tuple[str, str], float] = {}
        for phase, hists in per_name.items():
            total = histogram.merged(hists)
            p99 = histogram.quantile_ms(total, 0.99)
            if p99 is not None and sum(total.values()) >= settings.min_samples:
                thresholds[phase] = max(settings.multiple * p99, settings.min_s * 1000)
        return thresholds

    def _queue_stats(self, ns: str) -> list[tuple[str, QueueStats]]:
        keys = sorted(str(k) for k in self.store.client.smembers(ns + "queues"))
        docs = self.store.client.mget([f"{ns}queue:{k}" for k in keys]) if keys else []
        return [(k, queue_from_json(_json(raw))) for k, raw in zip(keys, docs, strict=True)
                if raw is not None]  # fmt: skip


def _stuck(job_id: str, track: Any, age_ms: int, limit_ms: float | None, reason: str) -> StuckJob:
    return StuckJob(job_id=job_id, job_name=track.job_name, queue=track.queue,
                    state=str(track.state), since=utc_from_ms(track.since), age_s=age_ms / 1000,
                    threshold_s=None if limit_ms is None else limit_ms / 1000,
                    reason=reason)  # fmt: skip


def _summary(fp: str, stats: Any) -> ErrorSummary:
    seen = stats.count > 0
    return ErrorSummary(
        fingerprint=fp, template=stats.template, error_type=stats.error_type, count=stats.count,
        first_seen=utc_from_ms(stats.first_seen) if seen else None,
        last_seen=utc_from_ms(stats.last_seen) if seen else None,
        job_names=dict(sorted(stats.job_names.items())), models=dict(sorted(stats.models.items())),
    )  # fmt: skip


def _json(raw: Any) -> Any:
    return json.loads(str(raw))
