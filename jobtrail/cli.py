"""The `jobtrail` command: every operation of the project has a subcommand here.

Each subcommand is a thin shell: it reads settings, calls into the packages, and prints.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from jobtrail import __version__, analytics_cli, dlq_cli
from jobtrail.errors import JobtrailError

if TYPE_CHECKING:
    from projections.ports import ProjectionStore

app = typer.Typer(
    help="jobtrail: event-sourced job lifecycles on Apache Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(
    help="Create and check the Kafka topics in the catalog.", no_args_is_help=True
)
app.add_typer(topics_app, name="topics")
app.add_typer(dlq_cli.dlq_app, name="dlq")

for _command in analytics_cli.COMMANDS:
    app.command()(_command)

console = Console(stderr=True)


def main() -> None:
    try:
        app()
    except JobtrailError as exc:
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(2)


@app.command()
def version() -> None:
    """Print the jobtrail version."""
    print(__version__)


# -- topics -------------------------------------------------------------------------------------


@topics_app.command("apply")
def topics_apply(
    dry_run: Annotated[bool, typer.Option(help="Show the plan, change nothing.")] = False,
) -> None:
    """Create missing topics; report drift in existing ones (never changed automatically)."""
    from streams.admin import TopicAdmin
    from streams.settings import KafkaSettings
    from streams.topics import plan_topics, topic_catalog

    settings = KafkaSettings()
    catalog = topic_catalog(settings.topic_prefix, settings.partitions, settings.replication_factor)
    admin = TopicAdmin(settings)
    plan = plan_topics(catalog, admin.existing(s.name for s in catalog.all()))
    for name in plan.unchanged:
        console.print(f"  ok       {name}")
    for spec in plan.create:
        verb = "would create" if dry_run else "create"
        console.print(f"  {verb:8} {spec.name} ({spec.partitions} partitions, {dict(spec.config)})")
    for drift in plan.drift:
        console.print(f"  [yellow]drift[/yellow]    {drift}")
    if not dry_run:
        admin.apply(plan)
    if plan.drift:
        console.print(f"{len(plan.drift)} drifted settings left as they are (see above).")


@topics_app.command("check")
def topics_check() -> None:
    """Exit 1 when a catalog topic is missing or differs from the catalog."""
    from streams.admin import TopicAdmin
    from streams.settings import KafkaSettings
    from streams.topics import plan_topics, topic_catalog

    settings = KafkaSettings()
    catalog = topic_catalog(settings.topic_prefix, settings.partitions, settings.replication_factor)
    plan = plan_topics(catalog, TopicAdmin(settings).existing(s.name for s in catalog.all()))
    for spec in plan.create:
        console.print(f"  [red]missing[/red]  {spec.name}")
    for drift in plan.drift:
        console.print(f"  [yellow]drift[/yellow]    {drift}")
    if plan.create or plan.drift:
        raise typer.Exit(1)
    console.print(f"all {len(plan.unchanged)} topics match the catalog")


@topics_app.command("list")
def topics_list() -> None:
    """Show the catalog: names, keys, values, partitions and configs."""
    from streams.settings import KafkaSettings
    from streams.topics import topic_catalog

    settings = KafkaSettings()
    table = Table("topic", "key", "value", "partitions", "config")
    for spec in topic_catalog(
        settings.topic_prefix, settings.partitions, settings.replication_factor
    ).all():
        table.add_row(
            spec.name, spec.key, spec.value, str(spec.partitions), json.dumps(dict(spec.config))
        )
    Console().print(table)


# -- demo ---------------------------------------------------------------------------------------


@app.command()
def demo(
    jobs: Annotated[
        int | None, typer.Option(help="Jobs to simulate (each runs to its end).")
    ] = 1000,
    events: Annotated[int | None, typer.Option(help="Stop after this many events instead.")] = None,
    rate: Annotated[
        float, typer.Option(help="Events per second to send; 0 = as fast as possible.")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same events.")] = 0,
    workers: Annotated[int, typer.Option(help="Simulated workers.")] = 8,
    slots: Annotated[int, typer.Option(help="Concurrency slots per worker.")] = 4,
    arrivals: Annotated[float, typer.Option(help="Job arrivals per simulated second.")] = 3.0,
    start: Annotated[
        str, typer.Option(help="Event time of the first event (ISO 8601), or 'now'.")
    ] = "2026-01-01T00:00:00Z",
    metrics_port: Annotated[
        int,
        typer.Option(
            envvar="JOBTRAIL_METRICS_PORT", help="Serve Prometheus metrics on this port (0: off)."
        ),
    ] = 8000,
) -> None:
    """Produce a realistic, deterministic job workload to the job-events topic."""
    from streams.demo.runner import run_demo
    from streams.demo.workload import Workload, WorkloadConfig
    from streams.metrics import register_producer, serve_metrics
    from streams.producer import JobEventProducer

    begin = datetime.now(UTC) if start == "now" else datetime.fromisoformat(start)
    if events is not None:
        jobs = None
    config = WorkloadConfig(
        jobs=jobs, events=events, workers=workers, slots=slots, arrivals_per_s=arrivals, start=begin
    )
    with JobEventProducer() as producer:
        register_producer(producer, "demo")
        serve_metrics(metrics_port)
        with Progress(
            TextColumn("demo"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("events"),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("demo", total=events)
            summary = run_demo(
                Workload(config, seed),
                producer,
                rate=rate,
                on_progress=lambda n: progress.advance(task, n),
            )
    console.print(
        f"sent {summary.events} events for {sum(summary.jobs.values())} jobs to {producer.topic}"
        f" in {summary.elapsed_s:.1f} s"
        f" ({summary.events / max(summary.elapsed_s, 1e-9):,.0f} events/s)"
    )
    table = Table("event type", "count")
    for kind, count in sorted(summary.by_type.items()):
        table.add_row(kind, str(count))
    console.print(table)
    console.print(
        f"jobs by name: {dict(summary.jobs.most_common())}\n"
        f"terminal failures: {summary.terminal_failures}; distinct error templates:"
        f" {len(summary.templates)}; event time {summary.first_event_at} .. {summary.last_event_at}"
    )


# -- tail ---------------------------------------------------------------------------------------


@app.command()
def tail(
    max_events: Annotated[
        int, typer.Option("--max", help="Stop after this many events (0: never).")
    ] = 10,
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest event.")] = False,
    idle_s: Annotated[
        float, typer.Option(help="Stop after this long without events (0: never).")
    ] = 5.0,
) -> None:
    """Print job events as JSON lines (decoded; undecodable ones are reported on stderr)."""
    from streams.tail import tail_events

    for line in tail_events(max_events, from_beginning, idle_s, report=console.print):
        print(line, flush=True)


# -- fingerprints -------------------------------------------------------------------------------


@app.command()
def fingerprint() -> None:
    """Read messages on stdin, one per line; print `<sha256>\\t<template>` per line, in order."""
    from processors.fingerprint import fingerprint_message

    out = sys.stdout
    for line in sys.stdin:
        print_ = fingerprint_message(line.rstrip("\n"))
        out.write(f"{print_.sha256}\t{print_.template}\n")
    out.flush()


# -- processors ---------------------------------------------------------------------------------


@app.command()
def processors(
    metrics_port: Annotated[
        int,
        typer.Option(envvar="JOBTRAIL_PROCESSORS_METRICS_PORT", help="Prometheus port (0: off)."),
    ] = 8001,
    idle_stop_s: Annotated[
        float, typer.Option(help="Stop once caught up and idle this long (0: run forever).")
    ] = 0.0,
) -> None:
    """Run a stream-processor worker: validation and DLQ, fingerprints and one vectorize request
    per distinct error, attempt outcomes. Start more to share the partitions."""
    from processors.settings import ProcessorSettings
    from processors.worker import run_worker
    from streams.metrics import serve_metrics
    from streams.settings import KafkaSettings

    settings = ProcessorSettings()
    if idle_stop_s:
        settings = settings.model_copy(update={"idle_stop_s": idle_stop_s})
    kafka = KafkaSettings()
    serve_metrics(metrics_port)
    console.print(
        f"processing {kafka.topic_prefix}job-events (model {settings.embedding_model});"
        f" metrics on :{metrics_port}"
    )
    run_worker(settings, kafka)


@app.command()
def embed(
    idle_stop_s: Annotated[
        float, typer.Option(help="Stop after this long without new requests (0: run forever).")
    ] = 0.0,
    metrics_port: Annotated[
        int, typer.Option(envvar="JOBTRAIL_EMBED_METRICS_PORT", help="Prometheus port (0: off).")
    ] = 8004,
) -> None:
    """Run an embedder: vectorize requests in (its own consumer group), error vectors out."""
    import signal

    from processors.embedding.embedder import Embedder
    from processors.embedding.providers import open_provider
    from processors.embedding.settings import EmbedderSettings
    from streams.metrics import serve_metrics

    settings = EmbedderSettings()
    embedder = Embedder(open_provider(settings), settings=settings)
    serve_metrics(metrics_port)
    signal.signal(signal.SIGTERM, lambda *_: embedder.consumer.stopping.set())
    embedder.start()
    console.print(
        f"embedding {embedder.catalog.vectorize_requests.name} with {settings.provider}:"
        f"{embedder.provider.model} ({len(embedder.known)} already embedded);"
        f" metrics on :{metrics_port}"
    )
    try:
        embedder.run(idle_stop_s=idle_stop_s or None)
    except KeyboardInterrupt:
        pass
    finally:
        embedder.close()
    console.print(f"embedded {embedder.embedded} errors")


# -- projections --------------------------------------------------------------------------------


@app.command()
def project(
    store: Annotated[str, typer.Argument(help="redis, couchbase or analytics")],
    idle_stop_s: Annotated[
        float, typer.Option(help="Stop after this long without new events (0: run forever).")
    ] = 0.0,
    metrics_port: Annotated[
        int, typer.Option(envvar="JOBTRAIL_METRICS_PORT", help="Prometheus port (0: off).")
    ] = 0,
) -> None:
    """Run a projection: fold job events into the Redis or Couchbase read model, or job events,
    attempt outcomes and error vectors into the analytics model (Redis)."""
    import signal

    from projections.metrics import ProjectorMetrics
    from projections.projector import Projector
    from projections.stores import METRICS_PORTS, StoreKind, open_projection
    from streams.metrics import serve_metrics
    from streams.settings import KafkaSettings

    kind = StoreKind(store)
    kafka = KafkaSettings()
    opened = open_projection(kind, kafka)
    projector = Projector(opened.store, kafka, metrics=ProjectorMetrics.create(),
                          source=opened.source)  # fmt: skip
    port = metrics_port or METRICS_PORTS[kind]
    serve_metrics(port)
    signal.signal(signal.SIGTERM, lambda *_: projector.stopping.set())
    projector.start()
    console.print(f"projecting {', '.join(opened.source.topics)} into {kind}"
                  f" (group {projector.group_id}); metrics on :{port}")  # fmt: skip
    try:
        stats = projector.run(idle_stop_s=idle_stop_s or None)
    except KeyboardInterrupt:
        stats = projector.stats
    finally:
        projector.close()
    console.print(
        f"applied {stats.applied} events in {stats.batches} batches; {stats.duplicates}"
        f" duplicates skipped, {stats.undecodable} undecodable, {stats.store_errors} store errors"
    )


@app.command()
def rebuild(
    store: Annotated[str, typer.Argument(help="redis, couchbase or analytics")],
    status: Annotated[
        bool,
        typer.Option("--status", help="Say what exists (generations, rebuilds); change nothing."),
    ] = False,
    fresh: Annotated[
        bool, typer.Option(help="Drop an orphaned rebuild's generation instead of resuming it.")
    ] = False,
    batch_size: Annotated[int, typer.Option(help="Records per store batch.")] = 5000,
) -> None:
    """Replay the projection's topics into a fresh generation, then switch readers to it.

    A rebuild killed mid-way leaves a marker in the store: the next one resumes it from the
    offsets the store recorded (or drops it, with --fresh); store outages are waited out.
    """
    from projections.rebuild import rebuild as run_rebuild
    from projections.stores import StoreKind, open_projection
    from streams.settings import KafkaSettings

    kafka = KafkaSettings()
    opened = open_projection(StoreKind(store), kafka)
    if status:
        _print_rebuild_status(opened.store, opened.source.topics)
        return
    with Progress(
        TextColumn("rebuild"), BarColumn(), MofNCompleteColumn(), TextColumn("records"),
        TimeRemainingColumn(), console=console,
    ) as progress:  # fmt: skip
        task = progress.add_task("rebuild", total=None)
        report = run_rebuild(
            opened.store,
            kafka,
            source=opened.source,
            batch_size=batch_size,
            resume=not fresh,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    rate = report.records / max(report.replay_seconds, 1e-9)
    resumed = " (resumed an orphaned rebuild)" if report.resumed else ""
    dropped = f"; dropped orphaned generations {list(report.dropped_orphans)}" * bool(
        report.dropped_orphans
    )
    restarts = f"; {report.restarts} restarts after store errors" * bool(report.restarts)
    console.print(
        f"rebuilt generation {report.new_generation}{resumed} from {report.records} records in"
        f" {report.replay_seconds:.1f} s ({rate:,.0f}/s);"
        f" readers switched from generation {report.old_generation}, which was dropped"
        f"{dropped}{restarts}"
    )


def _print_rebuild_status(store: ProjectionStore[Any], topics: list[str]) -> None:
    from projections.rebuild_status import rebuild_status
    from streams.settings import KafkaSettings

    report = rebuild_status(store, KafkaSettings(), topics=topics)
    out = Console()
    out.print(f"store {report.store}: readers use generation {report.current}")
    table = Table("generation", "role", "partitions", "applied records", "behind the log end")
    for generation in report.generations:
        applied = sum(offset + 1 for offset in generation.applied.values())
        table.add_row(str(generation.generation), generation.role,
                      str(len(generation.applied)), str(applied),
                      str(generation.behind))  # fmt: skip
    out.print(table)
    out.print(
        f"log end: {sum(report.log_end.values())} records in {len(report.log_end)} partitions"
    )
    marker = report.marker
    if marker is None:
        out.print("rebuild: none recorded")
        return
    started = datetime.fromtimestamp(marker.started_at, UTC).isoformat(timespec="seconds")
    hint = {
        "running": "in progress",
        "orphaned": "orphaned: its owner is gone; `jobtrail rebuild` resumes it (--fresh drops it)",
        "switched": f"switched readers, then stopped before dropping generation"
        f" {marker.old_generation}; `jobtrail rebuild` drops it",
    }[report.rebuild_state or "running"]
    out.print(
        f"rebuild: generation {marker.generation} by {marker.owner}, started {started}: {hint}"
    )


if __name__ == "__main__":
    main()
