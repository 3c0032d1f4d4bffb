"""The analytics and operations commands of the `jobtrail` CLI: retry and concurrency curves,
errors, stuck jobs, queues, jobs and their history, the HTTP API, the pipeline's status.

Each prints what the query layer answers (jobtrail/queries.py, jobtrail/analytics_queries.py),
the same answers the HTTP API serves; the CLI module registers them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from jobtrail.errors import JobtrailError
from jobtrail.intervals import Proportion

if TYPE_CHECKING:
    from fastapi import FastAPI

    from jobtrail.analytics_queries import AnalyticsQueries, Quantiles
    from jobtrail.categories.service import CategoryService
    from jobtrail.queries import Queries, Rate
    from projections.analytics.redis_store import AnalyticsRedisStore
    from projections.couchbase import CouchbaseStore


def _queries() -> Queries:
    from jobtrail.queries import Queries
    from projections.redis import RedisStore
    from streams.settings import KafkaSettings

    store = RedisStore()
    store.setup()
    return Queries(store, KafkaSettings(), _couchbase_store)


def _couchbase_store() -> CouchbaseStore:
    from projections.couchbase import CouchbaseStore

    return CouchbaseStore()


def _analytics() -> AnalyticsQueries:
    from jobtrail.analytics_queries import AnalyticsQueries
    from projections.analytics.redis_store import AnalyticsRedisStore

    store = AnalyticsRedisStore()
    store.setup()
    return AnalyticsQueries(store)


def _categories(store: AnalyticsRedisStore | None = None) -> CategoryService:
    from jobtrail.categories.service import CategoryService
    from jobtrail.categories.settings import CategorySettings
    from processors.embedding.providers import open_provider
    from processors.embedding.settings import EmbedderSettings

    embedder = EmbedderSettings()
    return CategoryService(store or _analytics().store, embedder.model, CategorySettings(),
                           lambda: open_provider(embedder))  # fmt: skip


def _rate(chance: Proportion | Rate) -> tuple[str, str]:
    """A rate and its interval as table cells (a Proportion, or the query layer's Rate)."""
    interval = chance.interval
    return (
        "-" if chance.rate is None else f"{chance.rate:.3f}",
        "-" if interval is None else f"{interval[0]:.3f} - {interval[1]:.3f}",
    )


def stats(
    name: Annotated[str | None, typer.Argument(help="A job name; all names when omitted.")] = None,
) -> None:
    """Job statistics from the Redis read model: states, active jobs, failure rate, retry success
    chances (finished jobs only, cancelled ones left out)."""
    queries = _queries()
    summaries = [queries.job_name(name)] if name else queries.job_names()
    table = Table("job name", "jobs", "states", "active", "failure rate",
                  "P(success | failed >= 1, 2, 3)")  # fmt: skip
    for summary in summaries:
        points = {p.failed_at_least: p.success.rate for p in queries.retries(summary.name).points}
        chances = [points.get(k) for k in (1, 2, 3)]
        table.add_row(summary.name, str(summary.jobs),
                      " ".join(f"{k}={v}" for k, v in summary.states.items()),
                      str(summary.active), _rate(summary.failure_rate)[0],
                      " ".join("-" if c is None else f"{c:.2f}" for c in chances))  # fmt: skip
    Console().print(table)


def retries(
    name: Annotated[str, typer.Argument(help="A job name.")],
    threshold: Annotated[
        float, typer.Option(help="Suggest giving up where the success chance stays below this.")
    ] = 0.05,
    min_jobs: Annotated[
        int, typer.Option(help="Fewest finished jobs at a k to draw a conclusion from it.")
    ] = 30,
) -> None:
    """The retry curve of a job name: P(eventual success | failed >= k) with 95% intervals, and
    a suggested retry limit (finished jobs only, cancelled ones left out; Redis read model)."""
    curve = _queries().retries(name, threshold, min_jobs)
    table = Table("failed >= k", "jobs", "succeeded", "P(success)", "95% interval")
    for point in curve.points:
        success = point.success
        table.add_row(str(point.failed_at_least), str(success.total), str(success.hits),
                      *_rate(success))  # fmt: skip
    out = Console()
    out.print(table)
    limit = curve.suggested_limit
    verdict = "no suggestion" if limit is None else f"give up after {limit} failed attempts"
    out.print(f"suggested retry limit: {verdict}; {curve.evidence}")


def concurrency(
    name: Annotated[str | None, typer.Argument(help="A job name.")] = None,
    worker: Annotated[
        str | None, typer.Option(help="A worker instead of a job name: its load of any job.")
    ] = None,
) -> None:
    """Failure rate against the number of attempts running at once (of the job name anywhere,
    or on the worker), with 95% intervals and the baseline of attempts that ran alone (analytics
    read model)."""
    if (name is None) == (worker is None):
        raise JobtrailError("name a job name or a --worker (one of them)")
    curve = _analytics().concurrency(job_name=name, worker=worker)
    table = Table("running at once", "attempts", "failed", "failure rate", "95% interval")
    for point in curve.levels:
        rate = point.failure_rate
        table.add_row(point.label, str(rate.total), str(rate.hits), *_rate(rate))
    out = Console()
    out.print(table)
    base = curve.baseline
    alone = "none ran alone" if base is None else f"{_rate(base.failure_rate)[0]} when it ran alone"
    out.print(f"overall failure rate {_rate(curve.overall)[0]}; baseline: {alone}")


def errors(
    page: Annotated[int, typer.Option(help="Page number, from 0.")] = 0,
    size: Annotated[int, typer.Option(help="Errors per page.")] = 20,
) -> None:
    """Distinct errors (fingerprints), most frequent first: count, last seen, job names, template
    (analytics read model). `jobtrail error FINGERPRINT` shows one in full."""
    answer = _analytics().errors(page, size)
    table = Table("fingerprint", "count", "last seen", "job names", "template")
    for error in answer.errors:
        last = "-" if error.last_seen is None else error.last_seen.isoformat(timespec="seconds")
        table.add_row(error.fingerprint[:12], str(error.count), last,
                      ", ".join(error.job_names), error.template[:80])  # fmt: skip
    out = Console()
    out.print(table)
    out.print(f"{answer.total} distinct errors; page {page} of size {size}")


def error(
    fingerprint: Annotated[str, typer.Argument(help="The error's fingerprint (sha256).")],
    vectors: Annotated[bool, typer.Option(help="Include each model's vector.")] = False,
) -> None:
    """One error as JSON: template, sample, counts, job names, latest jobs, embedding models."""
    print(_analytics().error(fingerprint, vectors=vectors).model_dump_json(indent=2))


def gaps(
    limit: Annotated[int, typer.Option(help="List at most this many.")] = 50,
) -> None:
    """Stuck jobs: queued, active or retrying for longer than their job name's threshold, and
    stalled ones, aged in event time against the log's progress (analytics read model;
    thresholds: JOBTRAIL_GAPS_*)."""
    answer = _analytics().gaps(limit)
    table = Table("job", "job name", "state", "since", "age (s)", "threshold (s)", "why")
    for job in answer.jobs:
        table.add_row(job.job_id, job.job_name, job.state, job.since.isoformat(timespec="seconds"),
                      f"{job.age_s:,.0f}", "-" if job.threshold_s is None else
                      f"{job.threshold_s:,.0f}", job.reason)  # fmt: skip
    out = Console()
    out.print(table)
    progress = "-" if answer.progress is None else answer.progress.isoformat(timespec="seconds")
    out.print(f"{len(answer.jobs)} stuck of {answer.open_jobs} open jobs; log progress {progress}")


def queues() -> None:
    """Per queue and job name: jobs waiting, active, completed and failed, throughput, and
    p50/p95/p99 of waiting and run time (analytics read model)."""
    table = Table("queue", "job name", "waiting", "active", "completed", "failed", "per min",
                  "wait p50/p95/p99 ms", "run p50/p95/p99 ms")  # fmt: skip
    for row in _analytics().queues():
        table.add_row(row.queue or "-", row.job_name, str(row.waiting), str(row.active),
                      str(row.completed), str(row.failed), f"{row.throughput_per_min:.1f}",
                      _quantiles(row.waiting_time_ms), _quantiles(row.run_time_ms))  # fmt: skip
    Console().print(table)


def _quantiles(q: Quantiles) -> str:
    return "/".join("-" if v is None else f"{v:,}" for v in (q.p50, q.p95, q.p99))


def jobs(
    name: Annotated[str, typer.Argument(help="A job name.")],
    page: Annotated[int, typer.Option(help="Page number, from 0.")] = 0,
    size: Annotated[int, typer.Option(help="Jobs per page.")] = 20,
    state: Annotated[str | None, typer.Option(help="Only jobs now in this state.")] = None,
) -> None:
    """Job ids of one job name from the Redis read model, newest first."""
    for job_id in _queries().jobs(name, page, size, state).job_ids:
        print(job_id)


def job(
    job_id: Annotated[str, typer.Argument(help="The job id.")],
    history: Annotated[
        bool, typer.Option(help="Every event and attempt, from the Couchbase job document.")
    ] = False,
) -> None:
    """One job as JSON: its state and counters (Redis), or with --history its events and
    attempts with durations, workers and errors (Couchbase)."""
    queries = _queries()
    answer = queries.history(job_id) if history else queries.job(job_id)
    print(answer.model_dump_json(indent=2))


def categories(
    name: Annotated[
        str | None, typer.Argument(help="One category in full: top errors, job names, hours.")
    ] = None,
    job_name: Annotated[str | None, typer.Option(help="Only this job name's errors.")] = None,
) -> None:
    """Occurrences per error category (JOBTRAIL_CATEGORIES_FILE, the starter file when unset):
    each distinct error classified from its vector in the analytics read model."""
    service = _categories()
    out = Console()
    if name is not None:
        detail = service.category(name)
        out.print(f"{detail.name}: {detail.occurrences:,} occurrences, {detail.fingerprints} "
                  f"distinct errors ({detail.share:.1%}); {detail.description or ''}")  # fmt: skip
        table = Table("occurrences", "score", "fingerprint", "template")
        for top in detail.top_errors:
            score = "-" if top.score is None else f"{top.score:.2f}"
            table.add_row(str(top.occurrences), score, top.fingerprint[:12], top.template[:80])
        out.print(table)
        out.print("job names: " + ", ".join(f"{k} {v}" for k, v in detail.job_names.items()))
        return
    answer = service.categories(job_name=job_name)
    table = Table("category", "occurrences", "share", "distinct errors")
    for count in answer.categories:
        table.add_row(count.name, f"{count.occurrences:,}", f"{count.share:.1%}",
                      str(count.fingerprints))  # fmt: skip
    out.print(table)
    if answer.file_error:
        out.print(f"[red]the categories file is bad now, the last good one serves: "
                  f"{answer.file_error}[/red]")  # fmt: skip
    out.print(f"{answer.total:,} occurrences; categories from {answer.categories_file}, "
              f"vectors of {answer.model}")  # fmt: skip


def categorize(
    categories_file: Annotated[
        str | None,
        typer.Option(
            "--categories",
            help="The categories YAML (default: JOBTRAIL_CATEGORIES_FILE, else the starter).",
        ),
    ] = None,
    scores: Annotated[bool, typer.Option(help="Print each line's score after a tab.")] = True,
) -> None:
    """Reads error messages on stdin, one per line, and prints one line per message: its
    category's name or `uncategorized`, then a tab and the score; the classifier and embedding
    provider (JOBTRAIL_EMBED_*) are those of the pipeline."""
    import sys

    from jobtrail.categories.categorize import build_classifier, message_inputs
    from jobtrail.categories.definitions import UNCATEGORIZED, load_categories
    from jobtrail.categories.settings import CategorySettings
    from processors.embedding.providers import open_provider
    from processors.embedding.settings import EmbedderSettings

    settings = CategorySettings()
    chosen = load_categories(categories_file or settings.file)
    messages = [line.rstrip("\r\n") for line in sys.stdin]
    provider = open_provider(EmbedderSettings())
    thresholds = settings.thresholds()
    classifier = build_classifier(chosen, provider, thresholds)
    inputs = message_inputs(messages, provider, classifier.dimension)
    labels = classifier.classify(*inputs) if messages else None
    out = sys.stdout
    for row in range(len(messages)):
        assert labels is not None
        name = classifier.name_of(int(labels.index[row])) or UNCATEGORIZED
        out.write(f"{name}\t{labels.score[row]:.3f}\n" if scores else f"{name}\n")
    out.flush()


def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (JOBTRAIL_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (JOBTRAIL_API_PORT).")] = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json) until Ctrl-C; JOBTRAIL_API_TOKEN turns on
    bearer-token auth for every route but /api/health."""
    import uvicorn

    from jobtrail.api import ApiSettings

    settings = ApiSettings()
    listen_host = host or settings.host
    listen_port = port if port is not None else settings.port
    if settings.workers > 1:  # uvicorn starts each worker from an import string
        uvicorn.run("jobtrail.analytics_cli:api_from_env", factory=True, workers=settings.workers,
                    host=listen_host, port=listen_port, log_level="warning")  # fmt: skip
    else:
        uvicorn.run(api_from_env(), host=listen_host, port=listen_port, log_level="warning")


def api_from_env() -> FastAPI:
    """The API app with its read models and settings from the environment (JOBTRAIL_*)."""
    from jobtrail.api import ApiSettings, create_api

    analytics = _analytics()
    categories = _categories(analytics.store)
    categories.warm()
    return create_api(_queries(), analytics, ApiSettings(), categories)


def status() -> None:
    """Each component of the pipeline: its supervised process (`make up`) and its consumer
    group's lag; exits 1 when supervisor is not running or a component is not RUNNING."""
    from jobtrail.pipeline import consumer_groups, supervised
    from processors.embedding.settings import EmbedderSettings
    from streams.lag import committed_lag
    from streams.settings import KafkaSettings

    kafka = KafkaSettings()
    groups = consumer_groups(kafka, EmbedderSettings().model)
    processes = supervised()
    by_name = {process.name: process for process in processes or []}
    table = Table("component", "process", "detail", "consumer lag")
    for name in sorted(set(by_name) | set(groups)):
        process = by_name.get(name)
        lag = committed_lag(kafka, *groups[name]) if name in groups else None
        table.add_row(name, process.state if process else "-",
                      process.description if process else "",
                      "-" if lag is None else f"{lag:,}")  # fmt: skip
    out = Console()
    out.print(table)
    if processes is None:
        out.print("supervisor is not running: `make up` starts the pipeline")
        raise typer.Exit(1)
    down = [process.name for process in processes if process.state != "RUNNING"]
    if down:
        out.print(f"not running: {', '.join(down)} (logs in .infra-data/supervisor/)")
        raise typer.Exit(1)


COMMANDS = (stats, retries, concurrency, errors, error, gaps, queues, jobs, job, categories,
            categorize, serve, status)  # fmt: skip
