"""The Faust app: agents that move records between topics and the pure functions of processors/.

Topology (every arrow is a Kafka topic; internal ones are created by Faust):

    job-events ──ingest──► job-events.dlq                  (bad records, with the reason)
                  │──────► processors.fingerprint-sightings ──dedup──► vectorize-requests
                  └──────► processors.attempt-edges ──concurrency──► processors.attempt-counts
                                                              ──join──► attempt-outcomes

What must survive a restart is in changelog-backed tables (latest attempt per job, fingerprint
rows, per-key concurrency, the halves of each attempt's outcome); edges waiting for the watermark
are held unacknowledged instead, so a restarted or rebalanced worker reads them again. More
workers with the same settings share the partitions.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import os
import signal
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import faust
import faust.transport.consumer as faust_consumer
from confluent_kafka import Consumer, TopicPartition

from processors.attempts import AttemptEdge, Dimension, LatestAttempt, dimension_key
from processors.concurrency import (
    EVERYTHING,
    KeyState,
    Mark,
    SourceProgress,
    apply,
    forget_before,
    release_order,
    watermark,
)
from processors.dedup import FingerprintEntry, Sighting, observe, request_missing
from processors.event_ids import SeenEvents, expired
from processors.ingest import Duplicate, Record, Rejected, Step, first_stage
from processors.metrics import ProcessorMetrics
from processors.outcomes import count_from_json, count_to_json, join
from processors.output import Output
from processors.settings import ProcessorSettings
from processors.validation import ContractLimits
from schemas.codec import create_codec
from schemas.derived import encode_attempt_outcome, encode_vectorize_request
from schemas.job_event import millis
from streams.dlq import DeadLetter
from streams.kafka_config import consumer_config
from streams.settings import KafkaSettings
from streams.topics import topic_catalog

log = logging.getLogger(__name__)

# Behind, yet nothing consumed this long: a stall worth a warning that says where it is.
STALL_WARN_S = 30.0


@dataclass(slots=True)
class _Arrival:
    """An attempt-edges record, kept in offset order until it and every record before it on its
    partition are done, and only then acknowledged: Faust commits the first run of consecutive
    acknowledged offsets, and on a partition it has not committed yet it ignores a gap at the
    head, so acknowledging a mark while earlier edges are held would commit past those edges."""

    event: Any
    done: bool = False


Held = tuple[
    tuple[int, int, str, int], str, int, AttemptEdge, _Arrival
]  # order, dimension, seq, edge, arrival


@dataclass(slots=True)
class _PartitionView:
    """What one attempt-edges partition holds in memory: upstream marks, edges waiting for the
    watermark, and the key states in use (write-through to the table)."""

    marks: dict[int, Mark] = field(default_factory=dict)
    heap: list[Held] = field(default_factory=list)
    arrivals: deque[_Arrival] = field(default_factory=deque)  # offset order, not yet acknowledged
    states: dict[str, KeyState] = field(default_factory=dict)
    released_ms: int | None = None


def _raw(data: Any) -> bytes | None:
    """A record's key or value as bytes (Faust hands raw bytes; anything else as JSON)."""
    if data is None or isinstance(data, bytes):
        return data
    return json.dumps(data, default=str).encode()


def internal_topic_names(kafka: KafkaSettings) -> dict[str, str]:
    base = f"{kafka.topic_prefix}processors."
    return {
        "sightings": base + "fingerprint-sightings",
        "edges": base + "attempt-edges",
        "counts": base + "attempt-counts",
    }


# The app's tables, each backed by a compacted changelog topic `<app id>-<table>-changelog`.
TABLES = ("latest-attempts", "fingerprints", "concurrency-keys", "outcome-halves",
          "seen-event-ids")  # fmt: skip


def changelog_topic_names(kafka: KafkaSettings) -> list[str]:
    return [f"{app_id(kafka)}-{table}-changelog" for table in TABLES]


def app_id(kafka: KafkaSettings) -> str:
    """The consumer group and the prefix of the changelog topics."""
    return f"{kafka.topic_prefix}processors"


def _ignore_gaps() -> None:
    """Faust records offsets missing between two fetched records as a gap and treats them as
    acknowledged when it commits: meant for compacted topics and transaction markers, neither of
    which our topics have. Records Faust itself dropped around a (re)start became such a gap, and
    were committed unprocessed; without the bookkeeping they stay uncommitted until processed."""

    async def no_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        return None

    faust_consumer.Consumer._add_gap = no_gap  # type: ignore[method-assign]


def committed_offsets(kafka: KafkaSettings, topic: str) -> dict[int, int | None]:
    """The processors group's committed offset of each partition (None: nothing committed)."""
    consumer = Consumer(consumer_config(kafka, app_id(kafka)))
    try:
        wanted = [TopicPartition(topic, partition) for partition in range(kafka.partitions)]
        committed = consumer.committed(wanted, timeout=10)
        return {tp.partition: None if tp.offset < 0 else int(tp.offset) for tp in committed}
    finally:
        consumer.close()


def create_app(  # noqa: PLR0915 -- the agents share the tables and topics declared here
    settings: ProcessorSettings | None = None,
    kafka: KafkaSettings | None = None,
    metrics: ProcessorMetrics | None = None,
    output: Output | None = None,
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
        # Edges wait for the watermark unacknowledged, on purpose; Faust's default waits for every
        # unacknowledged record before a rebalance or a stop, which would wait forever. Not
        # waiting is safe: what is unacknowledged is not committed and is read again.
        stream_wait_empty=False,
    )

    # Table writes wait in Faust's producer buffer; at its default bound (100) every agent stalls
    # on flushes many times a second.
    app.producer.buffer.max_messages = 10_000
    output = output or Output(
        kafka,
        lambda topic: metrics.events_out.labels(topic).inc(),
        max_message_bytes=settings.max_message_bytes,
        on_truncated=metrics.truncated_letters.inc,
    )
    output.install(app)

    def raw_topic(name: str) -> Any:
        return app.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    job_events = raw_topic(catalog.job_events.name)
    names = internal_topic_names(kafka)
    dlq = catalog.job_events_dlq.name
    requests = catalog.vectorize_requests.name
    outcomes = catalog.attempt_outcomes.name

    def internal_topic(name: str) -> Any:
        return app.topic(name, internal=True, partitions=partitions, key_serializer="raw",
                         value_serializer="json")  # fmt: skip

    sightings = internal_topic(names["sightings"])
    edges = internal_topic(names["edges"])
    counts = internal_topic(names["counts"])

    latest, prints, keys, halves_name, seen = TABLES
    latest_attempts = app.Table(latest, partitions=partitions)
    fingerprints = app.Table(prints, partitions=partitions)
    key_states = app.Table(keys, partitions=partitions)
    halves = app.Table(halves_name, partitions=partitions)  # member -> {dimension: count}
    seen_events = app.Table(seen, partitions=partitions)  # job -> SeenEvents

    progress: dict[int, SourceProgress] = {}
    seen_queue: dict[int, deque[tuple[int, str]]] = {}  # partition -> (last event, job) rows
    seen_loaded: set[bool] = set()  # non-empty once seen_queue holds the table's rows
    window_ms = round(settings.dedup_window_s * 1000)
    limits = ContractLimits()
    finished: dict[int, deque[tuple[int, str]]] = {}  # partition -> (ended at, job) of ended jobs
    marks_sent: dict[int, tuple[Mark, float]] = {}
    processed: dict[tuple[str, int], int] = {}  # (topic, partition) -> last offset processed
    views: dict[int, _PartitionView] = {}
    joined: dict[int, deque[tuple[int, str]]] = {}  # partition -> (ended at, member) joined
    sequence = itertools.count()  # ties in the heap never compare edges or events

    last_consumed = [time.monotonic()]
    stall_warned = [0.0]

    def consumed(message: Any, *, data: bool = True) -> None:
        """Counts a record; `data` False for event-time marks, which must not look like work."""
        if data:
            last_consumed[0] = time.monotonic()
        metrics.events_in.labels(message.topic).inc()
        processed[message.topic, message.partition] = message.offset

    # -- records in offset order, none skipped --------------------------------------------------
    # Faust can lose records around a (re)start or rebalance: records fetched while it resumes
    # its streams are dropped from its queues, and where the partition has no committed offset
    # (or the seek came first) nothing fetches them again. Our topics have no gaps (no compaction,
    # no transactions), so a record past the next expected offset means some were skipped: the
    # partition is rewound to them and records are dropped, unacknowledged, until they come.
    # Faust would count the skipped records as a gap (as if acknowledged) and commit past them;
    # `_ignore_gaps` turns that bookkeeping off (our topics have no real gaps).
    _ignore_gaps()
    rewound: dict[tuple[str, int], int] = {}  # (topic, partition) -> offset rewound to
    starts: dict[tuple[str, int], int] = {}  # where a partition's records start for this worker

    async def start_of(message: Any) -> int:
        """The group's committed offset when this worker took the partition (asked of the
        broker: Faust's own copy is not there yet while it resumes), else the log's start."""
        key = (message.topic, message.partition)
        if key not in starts:
            committed = await asyncio.get_running_loop().run_in_executor(
                None, committed_offsets, kafka, message.topic
            )
            for partition, offset in committed.items():
                if offset is not None:
                    starts.setdefault((message.topic, partition), offset)
        if key not in starts:
            earliest = await app.consumer.earliest_offsets(message.tp)
            starts[key] = earliest.get(message.tp, 0)
        return starts[key]

    async def in_order(message: Any) -> bool:
        key = (message.topic, message.partition)
        last = processed.get(key)
        expected = last + 1 if last is not None else await start_of(message)
        if message.offset <= expected:  # the next one, or a redelivery after a seek
            rewound.pop(key, None)
            return True
        if rewound.get(key) != expected:
            rewound[key] = expected
            metrics.rewinds.labels(message.topic).inc()
            log.warning("records %s..%s of %s[%s] were skipped by the consumer: rewinding",
                        expected, message.offset - 1, message.topic, message.partition)  # fmt: skip
        # Again for every stale record: Faust's fetcher, still handing out the batch it had,
        # moves its read offset past ours with each one, and would drop the records we want.
        # (`seek_wait` seeks in the consumer's own thread; `seek` would race its fetcher.)
        await app.consumer.seek_wait({message.tp: expected})
        return False

    async def in_order_events(stream: Any) -> AsyncIterator[Any]:
        """The stream's events in offset order, each acknowledged once the next is asked for
        (Faust's own rule: the agent is done with it), except those dropped for a rewind: they
        come again. Acknowledged then, not when the next record arrives: the last record before
        a quiet spell would otherwise stay uncommitted (a lag that never reaches 0, and a record
        done again by every restart)."""
        manual = cast(faust.Stream[Any], stream).noack()
        async for event in manual.events():
            if await in_order(event.message):
                yield event
                await manual.ack(event)

    # -- stage 1: validate, fingerprint, track attempts ------------------------------------------

    def dead_letter(message: Any, reason: str, detail: str) -> None:
        letter = DeadLetter(
            reason=reason,
            detail=detail,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=_raw(message.key),
            value=_raw(message.value),
        )
        output.send_dead_letter(dlq, letter)
        metrics.dead_letters.labels(reason).inc()

    def seen_row(job_id: str) -> SeenEvents | None:
        stored = seen_events.get(job_id)
        return None if stored is None else SeenEvents.from_json(stored)

    def latest_row(job_id: str) -> LatestAttempt | None:
        stored = latest_attempts.get(job_id)
        return None if stored is None else LatestAttempt.from_json(stored)

    @app.agent(job_events)
    async def ingest_job_events(stream: faust.StreamT[bytes]) -> None:
        async for event in in_order_events(stream):
            message = event.message
            consumed(message)
            timestamp = message.timestamp
            record = Record(
                value=message.value,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                timestamp_ms=round(timestamp * 1000) if timestamp and timestamp > 0 else None,
            )
            try:
                step = first_stage(codec, record, seen_of=seen_row, latest_of=latest_row,
                                   limits=limits, max_ids=settings.dedup_max_ids,
                                   window_ms=window_ms)  # fmt: skip
            except Exception as exc:  # whatever a step raises on: dead-letter it
                # Once, with the reason, and move on: raising would stop the worker, and the
                # restart would meet the same record again (a crash loop).
                log.exception("handler error on %s[%s]@%s", message.topic, message.partition,
                              message.offset)  # fmt: skip
                dead_letter(message, "handler_error", f"{type(exc).__name__}: {exc}")
                continue
            if isinstance(step, Rejected):
                dead_letter(message, step.violation.reason, step.violation.detail)
                continue
            if isinstance(step, Duplicate):
                metrics.duplicates.inc()
                continue
            apply_first_stage(message.partition, step)
            metrics.latency.observe(max(0.0, time.time() - message.timestamp))

    def apply_first_stage(partition: int, step: Step) -> None:
        job = step.event
        sighting = step.sighting
        load_seen_queue()
        if step.seen is not None:
            if step.seen_new:  # queued once per row: the sweep re-queues it while in use
                seen_queue.setdefault(partition, deque()).append((step.seen.last_ms, job.job_id))
            seen_events[job.job_id] = step.seen.to_json()
        if sighting is not None:
            output.send_json(names["sightings"], sighting.fingerprint, sighting.to_json())
        if step.latest is not None:
            latest_attempts[job.job_id] = step.latest.to_json()
        edge = step.edge
        if edge is not None:
            for dimension, key in edge.counted_on():
                value = {"d": dimension.value, "e": edge.to_json()}
                output.send_json(names["edges"], dimension_key(dimension, key), value)
            after = step.latest or latest_row(job.job_id)
            if edge.terminal and after is not None and after.ended:
                finished.setdefault(partition, deque()).append((edge.time_ms, job.job_id))
        at = millis(job.occurred_at)
        tracker = progress.setdefault(partition, SourceProgress())
        tracker.saw(at, time.monotonic())
        forget_finished(partition, at - settings.horizon_ms)
        assert tracker.latest_ms is not None
        forget_seen(partition, tracker.latest_ms)

    def load_seen_queue() -> None:
        if seen_loaded:
            return
        seen_loaded.add(True)
        rows: dict[int, list[tuple[int, str]]] = {}
        for job_id, stored in list(seen_events.items()):
            row = SeenEvents.from_json(stored)
            rows.setdefault(row.partition, []).append((row.last_ms, job_id))
        for partition, entries in rows.items():
            seen_queue[partition] = deque(sorted(entries))

    def forget_seen(partition: int, now_ms: int) -> None:
        """Drops the event-id rows of jobs quiet for the dedup window (in the partition's event
        time). A row still in use goes to the back of the queue with its newer time. After a
        (re)start the queue is rebuilt from the table once (the queue lives in memory)."""
        queue = seen_queue.get(partition)
        while queue and queue[0][0] < now_ms - window_ms:
            _, job_id = queue.popleft()
            row = seen_row(job_id)
            if row is None or row.partition != partition:
                continue
            if expired(row, now_ms, window_ms):
                seen_events.pop(job_id, None)
            else:
                queue.append((row.last_ms, job_id))

    def forget_finished(partition: int, before_ms: int) -> None:
        """Drops the rows of jobs that ended for good a horizon ago: their last edges went out
        long since (a row is kept until then so that a redelivered end repeats its edge)."""
        queue = finished.get(partition)
        while queue and queue[0][0] < before_ms:
            _, job_id = queue.popleft()
            stored = latest_attempts.get(job_id)
            if stored is not None and LatestAttempt.from_json(stored).ended:
                latest_attempts.pop(job_id, None)

    async def next_offset(tp: Any) -> int:
        """The next offset to process: after the last processed one, or, where nothing was
        processed since this worker took the partition, its read position (the commit)."""
        last = processed.get((tp.topic, tp.partition))
        if last is not None:
            return last + 1
        return await app.consumer.position(tp) or 0

    @app.timer(settings.watermark_interval_s)  # type: ignore[untyped-decorator]
    async def report_event_time() -> None:
        source = job_events.get_topic_name()
        now = time.monotonic()
        for tp in app.consumer.assignment():
            if tp.topic != source:
                continue
            highwater = app.consumer.highwater(tp)
            if highwater is None:  # not fetched from yet (just assigned): nothing to say
                continue
            behind = highwater - await next_offset(tp)
            tracker = progress.setdefault(tp.partition, SourceProgress())
            mark = tracker.mark(now, settings.grace_ms, settings.idle_after_s, behind <= 0)
            last = marks_sent.get(tp.partition)
            # Changes go out at once; an unchanged mark is repeated now and then for a
            # concurrency worker that restarted and lost the marks it held in memory.
            if mark is None or (last is not None and last[0] == mark and now - last[1] < 5.0):
                continue
            marks_sent[tp.partition] = (mark, now)
            for target in range(partitions):
                value = {"wm": tp.partition, "t": mark.time_ms, "idle": mark.idle}
                output.send_json(names["edges"], None, value, partition=target)

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def report_lag() -> None:
        lag: dict[str, int] = {}
        lagging: list[Any] = []
        sources = {topic.get_topic_name() for topic in (job_events, sightings, edges, counts)}
        for tp in app.consumer.assignment():
            if tp.topic not in sources:
                continue  # table changelogs: read during recovery only
            highwater = app.consumer.highwater(tp)
            if highwater is None:  # not fetched from yet (just assigned): nothing to say
                continue
            behind = highwater - await next_offset(tp)
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, behind)
            if behind > 0:
                lagging.append(tp)
        for topic, value in lag.items():
            metrics.lag.labels(topic).set(value)
        now = time.monotonic()
        quiet = now - last_consumed[0]
        held = sum(len(view.arrivals) for view in views.values())  # edges (and marks) unacked
        if (lagging or held) and quiet >= STALL_WARN_S and now - stall_warned[0] >= STALL_WARN_S:
            stall_warned[0] = now
            await warn_stalled(lagging, held, quiet)
        idle = not any(lag.values()) and not held
        if settings.idle_stop_s and quiet >= settings.idle_stop_s and idle:
            os.kill(os.getpid(), signal.SIGTERM)  # the worker's own graceful stop and commit

    async def warn_stalled(lagging: list[Any], held: int, quiet: float) -> None:
        """Behind (or holding edges) but consuming nothing: names each partition with its read
        position, what was processed, the high watermark and whether Faust stopped fetching it,
        and what each attempt-edges partition waits for."""
        consumer: Any = app.consumer
        parts = []
        for tp in lagging:
            flags = [name for name, tps in (("paused", consumer._paused_partitions),
                                            ("buffer-full", consumer._buffered_partitions))
                     if tp in tps]  # fmt: skip
            parts.append(f"{tp.topic}[{tp.partition}] position={await consumer.position(tp)}"
                         f" processed={processed.get((tp.topic, tp.partition))}"
                         f" highwater={consumer.highwater(tp)} {' '.join(flags)}")  # fmt: skip
        for partition, view in sorted(views.items()):
            if view.heap:
                marks = {source: (mark.time_ms, mark.idle) for source, mark in view.marks.items()}
                parts.append(f"{names['edges']}[{partition}] holds {len(view.heap)} edges, from"
                             f" {view.heap[0][0][0]} ms; marks {marks}")  # fmt: skip
        state = f"flow active: {consumer.flow_active}, rebalancing: {app.rebalancing}, {held} held"
        log.warning("behind, yet nothing consumed for %.0f s (%s): %s", quiet, state,
                    "; ".join(parts))  # fmt: skip

    # -- dedup: one vectorize request per fingerprint and model ----------------------------------

    @app.task  # type: ignore[untyped-decorator]
    async def announce_model() -> None:
        """Asks every fingerprint partition to request what the configured model lacks (a new
        model re-requests every known error once; a known model finds nothing to do)."""
        for target in range(partitions):
            output.send_json(names["sightings"], None, {"sweep": model}, partition=target)

    def emit_request(entry: FingerprintEntry, request: Any) -> None:
        output.send(requests, entry.fingerprint.encode(), encode_vectorize_request(request))

    def remember(entry: FingerprintEntry, partition: int) -> None:
        fingerprints[entry.fingerprint] = {**entry.to_json(), "p": partition}

    @app.agent(sightings)
    async def dedup_fingerprints(stream: faust.StreamT[Any]) -> None:
        async for event in in_order_events(stream):
            consumed(event.message)
            value = event.value
            partition = event.message.partition
            if "sweep" in value:
                requested = []
                for fingerprint, stored in list(fingerprints.items()):
                    if stored.get("p") != partition or value["sweep"] in stored["models"]:
                        continue
                    entry, request = request_missing(
                        FingerprintEntry.from_json(fingerprint, stored), value["sweep"]
                    )
                    if request is not None:
                        emit_request(entry, request)
                        requested.append(entry)
                await output.delivered()  # the requests first, then the rows that say so
                for entry in requested:
                    remember(entry, partition)
                continue
            try:
                sighting = Sighting.from_json(value)
                stored = fingerprints.get(sighting.fingerprint)
                known = None if stored is None else FingerprintEntry.from_json(
                    sighting.fingerprint, stored)  # fmt: skip
                entry, request = observe(known, sighting, model)
            except Exception as exc:  # a bug: dead-letter the record once, never crash-loop
                log.exception("handler error on %s[%s]@%s", event.message.topic, partition,
                              event.message.offset)  # fmt: skip
                dead_letter(event.message, "handler_error", f"{type(exc).__name__}: {exc}")
                continue
            metrics.dedup.labels("new" if request is not None else "seen").inc()
            if request is not None:
                emit_request(entry, request)
                # Rare (first sightings only), so waiting here is cheap; a row saying
                # "requested" without the request on the broker would lose it after a crash.
                await output.delivered()
            remember(entry, partition)

    # -- concurrency: release edges in event-time order, count what runs at once ----------------
    # Waiting edges are held unacknowledged (in memory), so their offsets are not committed: a
    # restarted or rebalanced worker reads them again. Only the per-key counts are in a table.

    def view_of(partition: int) -> _PartitionView:
        return views.setdefault(partition, _PartitionView())

    @app.on_partitions_revoked.connect
    def forget_held(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Every partition seeks back to its committed offset after a rebalance (Faust's
        # recovery), so whatever was held is read again, by whoever owns it now.
        views.clear()
        # Positions start over from the commits (another worker may have moved them on).
        processed.clear()
        rewound.clear()
        starts.clear()
        seen_queue.clear()  # rebuilt from the table, which then holds the new assignment's rows
        seen_loaded.clear()

    def state_of(view: _PartitionView, key: str) -> KeyState:
        state = view.states.get(key)
        if state is None:
            stored = key_states.get(key)
            state = view.states[key] = KeyState() if stored is None else KeyState.from_json(stored)
        return state

    async def count_edge(view: _PartitionView, dimension: str, edge: AttemptEdge) -> str:
        counted = Dimension(dimension)
        key = dimension_key(counted, dict(edge.counted_on())[counted])
        count = apply(state_of(view, key), edge, counted)
        if count is not None:
            output.send_json(names["counts"], edge.member, count_to_json(count))
        return key

    def save(view: _PartitionView, keys: set[str], now: int) -> None:
        for key in keys:
            state = view.states[key]
            forget_before(state, now - settings.horizon_ms)
            key_states[key] = state.to_json()

    async def release(view: _PartitionView, stream: Any) -> None:
        now = watermark(view.marks, partitions)
        if now is None or (view.released_ms is not None and now <= view.released_ms):
            return
        dirty: set[str] = set()
        released = []
        latest = view.released_ms if view.released_ms is not None else -1
        while view.heap and view.heap[0][0][0] <= now:
            _, dimension, _, edge, arrival = heapq.heappop(view.heap)
            dirty.add(await count_edge(view, dimension, edge))
            released.append(arrival)
            latest = max(latest, edge.time_ms)
        if now == EVERYTHING:  # all idle: released up to the last edge, not to the end of time
            now = max([latest, *(mark.time_ms for mark in view.marks.values())])
        await output.delivered()  # the counts first, then the states that say they were made
        save(view, dirty, now)
        for arrival in released:
            arrival.done = True
        await acknowledge_done(view, stream)
        view.released_ms = now
        metrics.watermark.set(now / 1000)

    async def acknowledge_done(view: _PartitionView, stream: Any) -> None:
        while view.arrivals and view.arrivals[0].done:
            await stream.ack(view.arrivals.popleft().event)

    @app.agent(edges)
    async def count_concurrency(stream: faust.StreamT[Any]) -> None:
        manual = cast(faust.Stream[Any], stream).noack()
        async for event in manual.events():
            if not await in_order(event.message):
                continue  # never acknowledged: it comes again after the rewind
            value = event.value
            partition = event.message.partition
            view = view_of(partition)
            arrival = _Arrival(event)
            view.arrivals.append(arrival)
            if "wm" in value:
                consumed(event.message, data=False)
                known = view.marks.get(value["wm"])
                time_ms = value["t"] if known is None else max(value["t"], known.time_ms)
                view.marks[value["wm"]] = Mark(time_ms, value["idle"])
                arrival.done = True
                await release(view, manual)
                await acknowledge_done(view, manual)
                continue
            consumed(event.message)
            edge = AttemptEdge.from_json(value["e"])
            if view.released_ms is not None and edge.time_ms <= view.released_ms:
                late = edge.time_ms < view.released_ms - settings.horizon_ms
                metrics.late_edges.labels("dropped" if late else "counted").inc()
                if not late:
                    counted = await count_edge(view, value["d"], edge)
                    await output.delivered()
                    save(view, {counted}, view.released_ms)
                arrival.done = True
                await acknowledge_done(view, manual)
                continue
            order = release_order(edge)
            heapq.heappush(view.heap, (order, value["d"], next(sequence), edge, arrival))

    # -- join: an attempt's counts on every dimension make its outcome -------------------------
    # The halves are kept in a table, not held: at least once, a half can come twice (a restart
    # recounts what it had counted but not committed), and a copy arriving after its pair was
    # joined must find the row, not wait forever for a partner. The half that completes a row
    # sends the outcome (again, for a copy: the same outcome; readers key it by attempt).

    @app.agent(counts)
    async def join_outcomes(stream: faust.StreamT[Any]) -> None:
        async for event in in_order_events(stream):
            consumed(event.message)
            try:
                count = count_from_json(event.value)
                member = count.edge.member
                parts, outcome = join(halves.get(member) or {}, count)
            except Exception as exc:  # a bug: dead-letter the record once, never crash-loop
                log.exception("handler error on %s[%s]@%s", event.message.topic,
                              event.message.partition, event.message.offset)  # fmt: skip
                dead_letter(event.message, "handler_error", f"{type(exc).__name__}: {exc}")
                continue
            halves[member] = parts
            if outcome is None:
                continue
            output.send(outcomes, outcome.job_id.encode(), encode_attempt_outcome(outcome))
            forget_joined(event.message.partition, count.edge.time_ms, member)

    def forget_joined(partition: int, ended_ms: int, member: str) -> None:
        """Rows of joined attempts stay for a horizon of event time (copies of their halves may
        still come), then go."""
        queue = joined.setdefault(partition, deque())
        queue.append((ended_ms, member))
        while queue and queue[0][0] < ended_ms - settings.horizon_ms:
            halves.pop(queue.popleft()[1], None)

    return app
