"""The Faust app: four stages (`processors.stages`), each an agent over its topic, wired here.

The topics and why each hop is needed: `processors.topology`. What survives a restart is in
changelog-backed tables; edges waiting for the watermark are held unacknowledged instead, so a
restarted or rebalanced worker reads them again. More workers with the same settings share the
partitions. Every Faust workaround is in `processors.faust_workarounds`.
"""

from __future__ import annotations

from typing import Any

import faust

from processors.faust_config import app_settings, widen_producer_buffer
from processors.faust_workarounds import (
    CommitGate,
    OffsetGuard,
    PartitionedTable,
    commit_between_batches,
    commit_nothing_when_all_revoked,
    complete_buffer_flush,
    flush_outputs_before_commit,
    ignore_gaps,
    recover_to_the_stable_end,
    start_over_from_the_commits,
)
from processors.metrics import ProcessorMetrics
from processors.offset_probe import OffsetProbe
from processors.output import Output
from processors.records import Sweep, encode
from processors.settings import ProcessorSettings
from processors.shell import FencedSink, RebalanceFence, Transactions, run_stage
from processors.stages.concurrency import ConcurrencyStage
from processors.stages.dedup import DedupStage
from processors.stages.ingest import IngestStage
from processors.stages.join import JoinStage
from processors.stages.ports import Sink, Stage
from processors.topology import TABLES, Topology, app_id
from processors.transactional_output import TransactionalOutput
from processors.watch import Watch
from schemas.codec import create_codec
from streams.settings import KafkaSettings


def create_app(
    settings: ProcessorSettings | None = None,
    kafka: KafkaSettings | None = None,
    metrics: ProcessorMetrics | None = None,
    output: Output | None = None,
) -> faust.App:
    settings = settings or ProcessorSettings()
    kafka = kafka or KafkaSettings()
    metrics = metrics or ProcessorMetrics.create()
    topology = Topology.of(kafka)
    app = faust.App(app_id(kafka), **app_settings(settings, kafka))
    widen_producer_buffer(app)
    complete_buffer_flush(app)
    ignore_gaps()
    commit_nothing_when_all_revoked()
    recover_to_the_stable_end()
    exactly_once = settings.processing_guarantee == "exactly_once"

    def sent(topic: str) -> None:
        metrics.events_out.labels(topic).inc()

    plain = output or Output(kafka, sent, max_message_bytes=settings.max_message_bytes,
                             on_truncated=metrics.truncated_letters.inc,
                             failures_are_final=True)  # fmt: skip
    # Exactly once, each output goes in the transaction of the partition it derives from.
    transactional = (TransactionalOutput(app, plain, max_message_bytes=plain.max_message_bytes,
                                         on_sent=sent) if exactly_once else None)  # fmt: skip
    sink: Sink = transactional or plain
    flush_outputs_before_commit(app, sink.delivered)
    transactions = None
    if transactional is not None:
        transactions = Transactions(transactional.source, transactional.pending, CommitGate())
        commit_between_batches(app, transactions.gate)
    # Transaction markers take offsets: the guard asks the broker what lies in a gap.
    probe = OffsetProbe(kafka, f"{app_id(kafka)}-offset-probe", read_committed=exactly_once)
    guard = OffsetGuard(app, kafka, on_rewind=lambda topic: metrics.rewinds.labels(topic).inc(),
                        probe=probe)  # fmt: skip
    # At least once, rows go out with the outputs (faust_workarounds 5.); exactly once, Faust's way.
    direct = None if exactly_once else plain
    tables = latest, prints, keys, halves, seen = tuple(
        PartitionedTable.add_to(app, name, topology.partitions, direct) for name in TABLES
    )
    fence = RebalanceFence.of(app)
    common: dict[str, Any] = {"topology": topology, "metrics": metrics,
                              "sink": FencedSink(sink, fence)}  # fmt: skip
    ingest = IngestStage(codec=create_codec(kafka.schema_registry_url), settings=settings,
                         seen=seen, latest=latest, **common)  # fmt: skip
    dedup = DedupStage(model=settings.embedding_model, fingerprints=prints, **common)
    concurrency = ConcurrencyStage(horizon_ms=settings.horizon_ms, key_states=keys,
                                   expiry_ms=settings.attempt_expiry_ms, **common)  # fmt: skip
    join = JoinStage(horizon_ms=settings.horizon_ms, halves=halves, **common)
    watch = Watch(app, settings=settings, guard=guard, ingest=ingest, concurrency=concurrency,
                  topology=topology, metrics=metrics, sink=sink,
                  transactions=transactions)  # fmt: skip
    watch.install()

    stages: dict[str, tuple[str, Stage]] = {
        "ingest": (topology.job_events, ingest),
        "dedup": (topology.sightings, dedup),
        "concurrency": (topology.edges, concurrency),
        "join": (topology.counts, join),
    }
    for name, (topic, stage) in stages.items():
        internal = topic != topology.job_events
        source = app.topic(topic, internal=internal, partitions=topology.partitions if internal
                           else None)  # fmt: skip
        # Event-time records keep coming while nothing else does: not activity.
        on_batch = None if stage is concurrency else watch.consumed
        run_stage(app, source, name, stage, guard, fence, batch_size=settings.batch_size,
                  within_s=settings.batch_within_s, on_batch=on_batch,
                  transactions=transactions)  # fmt: skip

    @app.on_partitions_revoked.connect
    def forget_held(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        guard.forget()
        for _, stage in stages.values():
            stage.forget()
        if transactional is not None:
            transactional.discard()

    if exactly_once:

        @app.on_partitions_revoked.connect
        async def start_over(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            await start_over_from_the_commits(app, tables)

    @app.task  # type: ignore[untyped-decorator]
    async def announce_model() -> None:
        """Asks every fingerprint partition to request what the configured model lacks (a new
        model re-requests every known error once; a known model finds nothing to do)."""
        for target in range(topology.partitions):
            sink.send(topology.sightings, None, encode(Sweep(settings.embedding_model)),
                      partition=target)  # fmt: skip

    return app
