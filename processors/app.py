"""The Faust app: agents that move records between topics and the pure functions of processors/.

Topology (every arrow is a Kafka topic; internal ones are created by Faust):

    job-events ──ingest──► job-events.dlq                  (bad records, with the reason)
                  │──────► processors.fingerprint-sightings ──dedup──► vectorize-requests
                  └──────► processors.attempt-edges ──concurrency──► processors.attempt-counts
                                                              ──join──► attempt-outcomes

Each stage's state is a changelog-backed table, so a restarted or rebalanced worker resumes
where the last one stopped. More workers with the same settings share the partitions.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field
from typing import Any

import faust

from processors.attempts import SEPARATOR, AttemptEdge, Dimension, OpenAttempt, track
from processors.concurrency import (
    KeyState,
    Mark,
    SourceProgress,
    apply,
    forget_before,
    release_order,
    watermark,
)
from processors.dedup import FingerprintEntry, Sighting, observe, request_missing
from processors.ingest import Rejected, ingest
from processors.metrics import ProcessorMetrics
from processors.outcomes import count_from_json, count_to_json, join
from processors.settings import ProcessorSettings
from schemas.codec import create_codec
from schemas.derived import encode_attempt_outcome, encode_vectorize_request
from schemas.job_event import millis
from streams.dlq import DeadLetter
from streams.settings import KafkaSettings
from streams.topics import topic_catalog

Pending = tuple[tuple[int, int, str, int], str, str, AttemptEdge]


@dataclass(slots=True)
class _PartitionView:
    """In-memory indexes over one attempt-edges partition's tables, rebuilt after a rebalance."""

    marks: dict[int, Mark] = field(default_factory=dict)
    heap: list[Pending] = field(default_factory=list)
    states: dict[str, KeyState] = field(default_factory=dict)
    released_ms: int | None = None


def internal_topic_names(kafka: KafkaSettings) -> dict[str, str]:
    base = f"{kafka.topic_prefix}processors."
    return {
        "sightings": base + "fingerprint-sightings",
        "edges": base + "attempt-edges",
        "counts": base + "attempt-counts",
    }


def app_id(kafka: KafkaSettings) -> str:
    """The consumer group and the prefix of the changelog topics."""
    return f"{kafka.topic_prefix}processors"


def create_app(  # noqa: PLR0915 -- the agents share the tables and topics declared here
    settings: ProcessorSettings | None = None,
    kafka: KafkaSettings | None = None,
    metrics: ProcessorMetrics | None = None,
) -> faust.App:
    settings = settings or ProcessorSettings()
    kafka = kafka or KafkaSettings()
    metrics = metrics or ProcessorMetrics.create()
    catalog = topic_catalog(kafka.topic_prefix, kafka.partitions, kafka.replication_factor)
    partitions = kafka.partitions
    codec = create_codec(kafka.schema_registry_url)
    model = settings.embedding_model

    app = faust.App(
        app_id(kafka),
        broker=[f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(",")],
        store=settings.store,
        datadir=settings.data_dir,
        processing_guarantee=settings.processing_guarantee,
        topic_partitions=partitions,
        topic_replication_factor=kafka.replication_factor,
        web_enabled=False,
        key_serializer="json",
        value_serializer="json",
        consumer_auto_offset_reset="earliest",
        producer_linger_ms=20,
        broker_session_timeout=10.0,
    )

    def raw_topic(name: str) -> Any:
        return app.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    job_events = raw_topic(catalog.job_events.name)
    dead_letters = raw_topic(catalog.job_events_dlq.name)
    vectorize_requests = raw_topic(catalog.vectorize_requests.name)
    attempt_outcomes = raw_topic(catalog.attempt_outcomes.name)
    names = internal_topic_names(kafka)
    sightings = app.topic(names["sightings"], internal=True, partitions=partitions)
    edges = app.topic(names["edges"], internal=True, partitions=partitions)
    counts = app.topic(names["counts"], internal=True, partitions=partitions)

    open_attempts = app.Table("open-attempts", partitions=partitions)
    fingerprints = app.Table("fingerprints", partitions=partitions)
    key_states = app.Table("concurrency-keys", partitions=partitions)
    pending_edges = app.Table("concurrency-pending", partitions=partitions)
    source_marks = app.Table("concurrency-marks", partitions=partitions)
    outcome_parts = app.Table("outcome-parts", partitions=partitions)

    progress: dict[int, SourceProgress] = {}
    processed: dict[tuple[str, int], int] = {}  # (topic, partition) -> last offset processed
    views: dict[int, _PartitionView] = {}

    def consumed(message: Any) -> None:
        metrics.events_in.labels(message.topic).inc()
        processed[message.topic, message.partition] = message.offset

    async def send(topic: Any, name: str, **kwargs: Any) -> None:
        await topic.send(**kwargs)
        metrics.events_out.labels(name).inc()

    # -- stage 1: validate, fingerprint, track attempts ------------------------------------------

    @app.agent(job_events)
    async def ingest_job_events(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            consumed(message)
            result = ingest(codec, message.value, message.topic)
            if isinstance(result, Rejected):
                letter = DeadLetter(
                    reason=result.violation.reason,
                    detail=result.violation.detail,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                    value=message.value,
                )
                await send(
                    dead_letters,
                    dead_letters.get_topic_name(),
                    key=message.key,
                    value=message.value,
                    headers=letter.headers(),
                )
                metrics.dead_letters.labels(letter.reason).inc()
                continue
            job = result.event
            sighting = result.sighting
            if sighting is not None:
                await send(
                    sightings,
                    names["sightings"],
                    key=sighting.fingerprint,
                    value=sighting.to_json(),
                )
            stored = open_attempts.get(job.job_id)
            before = None if stored is None else OpenAttempt.from_json(stored)
            after, edge = track(before, job, None if sighting is None else sighting.fingerprint)
            if after != before:
                if after is None:
                    open_attempts.pop(job.job_id, None)
                else:
                    open_attempts[job.job_id] = after.to_json()
            if edge is not None:
                for dimension, key in edge.counted_on():
                    await send(
                        edges,
                        names["edges"],
                        key=f"{dimension}{SEPARATOR}{key}",
                        value={"d": dimension.value, "e": edge.to_json()},
                    )
            progress.setdefault(message.partition, SourceProgress()).saw(
                millis(job.occurred_at), time.monotonic()
            )
            metrics.latency.observe(max(0.0, time.time() - message.timestamp))

    @app.timer(settings.watermark_interval_s)  # type: ignore[untyped-decorator]
    async def report_event_time() -> None:
        source = job_events.get_topic_name()
        now = time.monotonic()
        for tp in app.consumer.assignment():
            if tp.topic != source:
                continue
            behind = app.consumer.highwater(tp) - processed.get((source, tp.partition), -1) - 1
            tracker = progress.setdefault(tp.partition, SourceProgress())
            mark = tracker.mark(now, settings.grace_ms, settings.idle_after_s, behind <= 0)
            if mark is None:
                continue
            for target in range(partitions):
                await edges.send(
                    value={"wm": tp.partition, "t": mark.time_ms, "idle": mark.idle},
                    partition=target,
                )

    @app.timer(5.0)  # type: ignore[untyped-decorator]
    async def report_lag() -> None:
        lag: dict[str, int] = {}
        for tp in app.consumer.assignment():
            behind = app.consumer.highwater(tp) - processed.get((tp.topic, tp.partition), -1) - 1
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, behind)
        for topic, value in lag.items():
            metrics.lag.labels(topic).set(value)

    # -- dedup: one vectorize request per fingerprint and model ----------------------------------

    @app.task  # type: ignore[untyped-decorator]
    async def announce_model() -> None:
        """Asks every fingerprint partition to request what the configured model lacks (a new
        model re-requests every known error once; a known model finds nothing to do)."""
        for target in range(partitions):
            await sightings.send(value={"sweep": model}, partition=target)

    async def emit_request(entry: FingerprintEntry, request: Any) -> None:
        await send(
            vectorize_requests,
            vectorize_requests.get_topic_name(),
            key=entry.fingerprint.encode(),
            value=encode_vectorize_request(request),
        )

    @app.agent(sightings)
    async def dedup_fingerprints(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            consumed(event.message)
            value = event.value
            partition = event.message.partition
            if "sweep" in value:
                for fingerprint, stored in list(fingerprints.items()):
                    if stored.get("p") != partition or value["sweep"] in stored["models"]:
                        continue
                    entry, request = request_missing(
                        FingerprintEntry.from_json(fingerprint, stored), value["sweep"]
                    )
                    fingerprints[fingerprint] = {**entry.to_json(), "p": partition}
                    if request is not None:
                        await emit_request(entry, request)
                continue
            sighting = Sighting.from_json(value)
            stored = fingerprints.get(sighting.fingerprint)
            known = (
                None if stored is None else FingerprintEntry.from_json(sighting.fingerprint, stored)
            )
            entry, request = observe(known, sighting, model)
            fingerprints[sighting.fingerprint] = {**entry.to_json(), "p": partition}
            metrics.dedup.labels("new" if request is not None else "seen").inc()
            if request is not None:
                await emit_request(entry, request)

    # -- concurrency: release edges in event-time order, count what runs at once ----------------

    def view_of(partition: int) -> _PartitionView:
        view = views.get(partition)
        if view is not None:
            return view
        view = views[partition] = _PartitionView()
        prefix = f"{partition}{SEPARATOR}"
        for key, stored in source_marks.items():
            if key.startswith(prefix):
                view.marks[int(key[len(prefix) :])] = Mark(stored[0], stored[1])
        for key, stored in pending_edges.items():
            if key.startswith(prefix):
                edge = AttemptEdge.from_json(stored["e"])
                heapq.heappush(view.heap, (release_order(edge), stored["d"], key, edge))
        return view

    @app.on_partitions_revoked.connect
    def forget_views(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        views.clear()  # another worker may own some of them now; the tables hold the truth

    def state_of(view: _PartitionView, key: str) -> KeyState:
        state = view.states.get(key)
        if state is None:
            stored = key_states.get(key)
            state = view.states[key] = KeyState() if stored is None else KeyState.from_json(stored)
        return state

    async def count_edge(
        view: _PartitionView, dimension: str, edge: AttemptEdge, dirty: set[str]
    ) -> None:
        key = f"{dimension}{SEPARATOR}{edge.worker if dimension == 'worker' else edge.job_name}"
        count = apply(state_of(view, key), edge, Dimension(dimension))
        dirty.add(key)
        if count is not None:
            await send(counts, names["counts"], key=edge.member, value=count_to_json(count))

    async def release(view: _PartitionView) -> None:
        now = watermark(view.marks, partitions)
        if now is None or (view.released_ms is not None and now <= view.released_ms):
            return
        dirty: set[str] = set()
        while view.heap and view.heap[0][0][0] <= now:
            _, dimension, pending_key, edge = heapq.heappop(view.heap)
            await count_edge(view, dimension, edge, dirty)
            pending_edges.pop(pending_key, None)
        for key in dirty:
            state = view.states[key]
            forget_before(state, now - settings.horizon_ms)
            key_states[key] = state.to_json()
        view.released_ms = now
        metrics.watermark_lag.set(now / 1000)

    @app.agent(edges)
    async def count_concurrency(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            consumed(event.message)
            value = event.value
            partition = event.message.partition
            view = view_of(partition)
            if "wm" in value:
                source = value["wm"]
                known = view.marks.get(source)
                mark = Mark(max(value["t"], -1 if known is None else known.time_ms), value["idle"])
                view.marks[source] = mark
                source_marks[f"{partition}{SEPARATOR}{source}"] = [mark.time_ms, mark.idle]
                await release(view)
                continue
            edge = AttemptEdge.from_json(value["e"])
            if view.released_ms is not None and edge.time_ms <= view.released_ms:
                if edge.time_ms < view.released_ms - settings.horizon_ms:
                    metrics.late_edges.labels("dropped").inc()
                    continue
                metrics.late_edges.labels("counted").inc()
                dirty: set[str] = set()
                await count_edge(view, value["d"], edge, dirty)
                for key in dirty:
                    key_states[key] = view.states[key].to_json()
                continue
            kind = "s" if edge.is_start else "e"
            pending_key = f"{partition}{SEPARATOR}{value['d']}{SEPARATOR}{edge.member}{kind}"
            pending_edges[pending_key] = value
            heapq.heappush(view.heap, (release_order(edge), value["d"], pending_key, edge))

    # -- join: an attempt's counts on every dimension make its outcome -------------------------

    @app.agent(counts)
    async def join_outcomes(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            consumed(event.message)
            count = count_from_json(event.value)
            member = count.edge.member
            known, outcome = join(outcome_parts.get(member, {}), count)
            if outcome is None:
                outcome_parts[member] = known
                continue
            outcome_parts.pop(member, None)
            await send(
                attempt_outcomes,
                attempt_outcomes.get_topic_name(),
                key=outcome.job_id.encode(),
                value=encode_attempt_outcome(outcome),
            )

    return app
