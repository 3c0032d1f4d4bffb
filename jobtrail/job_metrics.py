"""Job metrics for Prometheus, computed from the read models at scrape time.

Never counters a consumer bumps: a replay or a rebuild recomputes the read models, so these
figures come back the same instead of doubling. Served by `jobtrail serve` at /metrics (beside the
per-category counts) and scraped by infra/prometheus/prometheus.yml.

No job id or free text becomes a label. Job names are the user's, but unbounded in principle:
the `max_job_names` with the most jobs keep their own series, every other one is summed under
`job_name="other"`.

- jobtrail_jobs{job_name, state}: jobs now in each state (the Redis job read model);
- jobtrail_jobs_active{job_name}: jobs running now;
- jobtrail_jobs_finished_total{job_name, outcome}: jobs that ended completed, failed, cancelled;
- jobtrail_job_failure_rate{job_name}: failed / (completed + failed) of finished jobs;
- jobtrail_job_retries_total{job_name}: retried attempts of finished jobs;
- jobtrail_jobs_stuck{job_name}: stuck jobs now (`jobtrail gaps`, the analytics model);
- jobtrail_concurrency_attempts_total{job_name, level}, jobtrail_concurrency_failures_total:
  attempts (failed or stalled ones) that ran while `level` attempts of the job name ran at once;
- jobtrail_dead_letters{topic}: letters each DLQ holds;
- jobtrail_consumer_lag{group}: committed lag of each pipeline component's consumer group.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobtrail.analytics_queries import AnalyticsQueries
from jobtrail.health import Health
from jobtrail.queries import DeadLetterCount, Queries
from projections.model import JobState, NameView

log = structlog.get_logger("jobtrail.job_metrics")
OTHER = "other"


class MetricsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBTRAIL_METRICS_", frozen=True, extra="ignore")

    max_job_names: int = Field(
        default=50, ge=1, description="Job names with their own series; the rest are `other`"
    )


def job_name_labels(jobs: Mapping[str, int], max_names: int) -> dict[str, str]:
    """Each job name's label: itself for the `max_names` with the most jobs (ties: by name),
    `other` for the rest."""
    ranked = sorted(jobs, key=lambda name: (-jobs[name], name))
    return {name: name if n < max_names else OTHER for n, name in enumerate(ranked)}


@dataclass(slots=True)
class NameFigures:
    """One label's figures (a job name, or the sum of those under `other`)."""

    states: Counter[str] = field(default_factory=Counter)
    active: int = 0
    retries: int = 0
    stuck: int = 0
    attempts: Counter[str] = field(default_factory=Counter)  # level label -> attempts
    failures: Counter[str] = field(default_factory=Counter)

    def add_view(self, view: NameView) -> None:
        self.states.update(view.counts)
        self.active += len(view.active)
        self.retries += retried_attempts(view.retries)


def retried_attempts(retries: Mapping[str, int]) -> int:
    """From the job read model's "<outcome>:<failures>" -> jobs: every failure was retried except
    the last one of a job that ended failed."""
    total = 0
    for key, jobs in retries.items():
        outcome, _, failures = key.partition(":")
        retried = int(failures) - (1 if outcome == JobState.FAILED.value else 0)
        total += max(0, retried) * jobs
    return total


def per_label(
    views: Mapping[str, NameView], max_names: int
) -> tuple[dict[str, str], dict[str, NameFigures]]:
    labels = job_name_labels({n: sum(v.counts.values()) for n, v in views.items()}, max_names)
    figures: dict[str, NameFigures] = {}
    for name, view in views.items():
        figures.setdefault(labels[name], NameFigures()).add_view(view)
    return labels, figures


def level_label(level: int, max_level: int) -> str:
    return f"{max_level}+" if level >= max_level else str(level)


class JobMetricsCollector(Collector):
    def __init__(
        self,
        queries: Queries,
        analytics: AnalyticsQueries,
        dead_letters: Callable[[], list[DeadLetterCount]],
        health: Callable[[], Health],
        settings: MetricsSettings | None = None,
    ) -> None:
        self.queries = queries
        self.analytics = analytics
        self.dead_letters = dead_letters
        self.health = health
        self.settings = settings or MetricsSettings()

    def describe(self) -> Iterator[Metric]:
        # Registration describes; collecting then would read Redis and Kafka before the server
        # even listens.
        yield from _Families().all()

    def collect(self) -> Iterator[Metric]:
        families = _Families()
        labels: dict[str, str] = {}
        figures: dict[str, NameFigures] = {}
        try:
            labels, figures = per_label(self.queries.store.name_views(),
                                        self.settings.max_job_names)  # fmt: skip
            self._add_analytics(labels, figures)
        except Exception as exc:  # Redis down: these families go without samples this scrape
            log.warning("job metrics unavailable", error=str(exc))
        families.add_names(figures)
        try:
            families.add_letters(self.dead_letters())
            families.add_health(self.health())
        except Exception as exc:  # a broker down must not fail the whole scrape
            log.warning("job metrics unavailable", error=str(exc))
        yield from families.all()

    def _add_analytics(self, labels: dict[str, str], figures: dict[str, NameFigures]) -> None:
        store = self.analytics.store
        for stuck in self.analytics.gaps(limit=10**9).jobs:
            label = labels.get(stuck.job_name, OTHER)
            figures.setdefault(label, NameFigures()).stuck += 1
        names = sorted(labels)
        if not names:
            return
        ns = store.current()
        docs = store.client.mget([f"{ns}conc:name:{name}" for name in names])
        for name, raw in zip(names, docs, strict=True):
            if raw is None:
                continue
            target = figures.setdefault(labels[name], NameFigures())
            for level, (attempts, failures) in json.loads(str(raw)).items():
                key = level_label(int(level), store.max_level)
                target.attempts[key] += attempts
                target.failures[key] += failures


class _Families:
    def __init__(self) -> None:
        self.jobs = GaugeMetricFamily("jobtrail_jobs", "Jobs now in each state",
                                      labels=["job_name", "state"])  # fmt: skip
        self.active = GaugeMetricFamily("jobtrail_jobs_active", "Jobs running now",
                                        labels=["job_name"])  # fmt: skip
        self.finished = CounterMetricFamily(
            "jobtrail_jobs_finished", "Jobs that ended completed, failed or cancelled",
            labels=["job_name", "outcome"],
        )  # fmt: skip
        self.failure_rate = GaugeMetricFamily(
            "jobtrail_job_failure_rate", "Failed / (completed + failed) of finished jobs",
            labels=["job_name"],
        )  # fmt: skip
        self.retries = CounterMetricFamily("jobtrail_job_retries",
                                           "Retried attempts of finished jobs",
                                           labels=["job_name"])  # fmt: skip
        self.stuck = GaugeMetricFamily("jobtrail_jobs_stuck", "Stuck jobs now (jobtrail gaps)",
                                       labels=["job_name"])  # fmt: skip
        self.attempts = CounterMetricFamily(
            "jobtrail_concurrency_attempts",
            "Attempts that ran while `level` attempts of the job name ran at once",
            labels=["job_name", "level"],
        )  # fmt: skip
        self.failures = CounterMetricFamily(
            "jobtrail_concurrency_failures",
            "Failed or stalled attempts that ran while `level` of the job name ran at once",
            labels=["job_name", "level"],
        )  # fmt: skip
        self.letters = GaugeMetricFamily("jobtrail_dead_letters", "Letters each DLQ holds",
                                         labels=["topic"])  # fmt: skip
        self.lag = GaugeMetricFamily(
            "jobtrail_consumer_lag", "Committed lag of each pipeline component's consumer group",
            labels=["group"],
        )  # fmt: skip

    def all(self) -> Iterable[Metric]:
        return (self.jobs, self.active, self.finished, self.failure_rate, self.retries,
                self.stuck, self.attempts, self.failures, self.letters, self.lag)  # fmt: skip

    def add_names(self, figures: Mapping[str, NameFigures]) -> None:
        for label, f in sorted(figures.items()):
            for state in JobState:
                self.jobs.add_metric([label, state.value], f.states.get(state.value, 0))
            self.active.add_metric([label], f.active)
            for outcome in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED):
                self.finished.add_metric([label, outcome.value], f.states.get(outcome.value, 0))
            ended = f.states.get("completed", 0) + f.states.get("failed", 0)
            if ended:
                self.failure_rate.add_metric([label], f.states.get("failed", 0) / ended)
            self.retries.add_metric([label], f.retries)
            self.stuck.add_metric([label], f.stuck)
            for level in sorted(f.attempts, key=lambda lv: int(lv.rstrip("+"))):
                self.attempts.add_metric([label, level], f.attempts[level])
                self.failures.add_metric([label, level], f.failures[level])

    def add_letters(self, letters: list[DeadLetterCount]) -> None:
        for count in letters:
            self.letters.add_metric([count.topic], count.letters)

    def add_health(self, health: Health) -> None:
        for component in health.components:
            if component.consumer_lag is not None:
                self.lag.add_metric([component.name], component.consumer_lag)
