"""The analytics and operations commands of the `jobtrail` CLI: retry and concurrency curves,
the HTTP API, the pipeline's status.

Each prints a table of the same curve the query functions compute (jobtrail/retry_curve.py,
jobtrail/concurrency_curve.py); the CLI module registers them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from jobtrail.errors import JobtrailError
from jobtrail.intervals import Proportion

if TYPE_CHECKING:
    from jobtrail.queries import Queries, Rate


def _queries() -> Queries:
    from jobtrail.queries import Queries
    from projections.redis import RedisStore
    from streams.settings import KafkaSettings

    store = RedisStore()
    store.setup()
    return Queries(store, KafkaSettings())


def _rate(chance: Proportion | Rate) -> tuple[str, str]:
    """A rate and its interval as table cells (a Proportion, or the query layer's Rate)."""
    interval = chance.interval
    return (
        "-" if chance.rate is None else f"{chance.rate:.3f}",
        "-" if interval is None else f"{interval[0]:.3f} - {interval[1]:.3f}",
    )


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
    max_level: Annotated[int, typer.Option(help="Levels above this share one bucket.")] = 32,
) -> None:
    """Failure rate against the number of attempts running at once (of the job name anywhere,
    or on the worker), with 95% intervals and the baseline of attempts that ran alone; folded
    from the attempt-outcomes topic."""
    from jobtrail.concurrency_curve import concurrency_curve
    from projections.concurrency import ConcurrencyModel
    from schemas.derived import decode_attempt_outcome
    from streams.reader import read_to_end
    from streams.settings import KafkaSettings
    from streams.topics import topic_catalog

    if (name is None) == (worker is None):
        raise JobtrailError("name a job name or a --worker (one of them)")
    kafka = KafkaSettings()
    topic = topic_catalog(kafka.topic_prefix, kafka.partitions, kafka.replication_factor)
    model = ConcurrencyModel(max_level)
    for message in read_to_end(kafka, topic.attempt_outcomes.name):
        model.apply(decode_attempt_outcome(message.value() or b""))
    table_of, key = (model.by_worker, worker) if worker else (model.by_job_name, name)
    if key not in table_of:
        raise JobtrailError(f"no attempt outcomes for {key!r} (run the processors first)")
    curve = concurrency_curve(table_of[key], model.max_level)
    table = Table("running at once", "attempts", "failed", "failure rate", "95% interval")
    for point in curve.points:
        table.add_row(point.label, str(point.failure.total), str(point.failure.hits),
                      *_rate(point.failure))  # fmt: skip
    out = Console()
    out.print(table)
    base = curve.baseline
    alone = "none ran alone" if base is None else f"{_rate(base.failure)[0]} when it ran alone"
    out.print(f"overall failure rate {_rate(curve.overall)[0]}; baseline: {alone}")


def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (JOBTRAIL_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (JOBTRAIL_API_PORT).")] = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json) until Ctrl-C; JOBTRAIL_API_TOKEN turns on
    bearer-token auth for every route but /api/health."""
    import uvicorn

    from jobtrail.api import ApiSettings, create_api

    settings = ApiSettings()
    app = create_api(_queries(), settings)
    uvicorn.run(app, host=host or settings.host, port=port if port is not None else settings.port,
                log_level="warning")  # fmt: skip


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


COMMANDS = (retries, concurrency, serve, status)
