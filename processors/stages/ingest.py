"""Stage 1, on job-events: validate and fingerprint, drop re-sent event ids, track attempts.

Per record the decision is `processors.ingest.first_stage` (pure); this module runs it over a
batch and gathers the effects: dead letters, one `Sightings` record per fingerprint partition, one
`Edges` record per attempt-edges partition, and each touched table row written once per batch.
Reads within a batch see the batch's own writes (a job's second event in a batch sees its first).

Rows are swept here too: a job's event ids once it has been quiet for the dedup window, the
latest attempt of a job that ended for good a horizon ago (both in the partition's event time).
The sweep queues live in memory and are rebuilt from the tables after a (re)start, so rows of
jobs that ended before a restart are dropped as well.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from processors.attempts import AttemptEdge, Dimension, LatestAttempt, dimension_key
from processors.concurrency import SourceProgress
from processors.dedup import Sighting
from processors.event_ids import SeenEvents, expired
from processors.ingest import Duplicate, Record, Rejected, first_stage
from processors.metrics import ProcessorMetrics
from processors.records import Edges, Sightings, by_partition, encode, partition_of
from processors.settings import ProcessorSettings
from processors.stages.ports import Incoming, Sink, Table, by_source, dead_letter
from processors.topology import Topology
from processors.validation import ContractLimits
from schemas.codec import JobEventCodec
from schemas.job_event import millis

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Rows:
    """The batch's view of the two per-job tables: what it wrote, else what the table holds."""

    seen_table: Table
    latest_table: Table
    seen: dict[str, SeenEvents] = field(default_factory=dict)
    latest: dict[str, LatestAttempt] = field(default_factory=dict)
    partitions: dict[str, int] = field(default_factory=dict)  # job -> its partition

    def seen_of(self, job_id: str) -> SeenEvents | None:
        if job_id in self.seen:
            return self.seen[job_id]
        stored = self.seen_table.get(job_id)
        return None if stored is None else SeenEvents.from_json(stored)

    def latest_of(self, job_id: str) -> LatestAttempt | None:
        if job_id in self.latest:
            return self.latest[job_id]
        stored = self.latest_table.get(job_id)
        return None if stored is None else LatestAttempt.from_json(stored)

    def write(self) -> None:
        """Each touched row once."""
        for job_id, seen in self.seen.items():
            self.seen_table.put(self.partitions[job_id], job_id, seen.to_json())
        for job_id, latest in self.latest.items():
            self.latest_table.put(self.partitions[job_id], job_id, latest.to_json())


class IngestStage:
    def __init__(
        self,
        *,
        topology: Topology,
        codec: JobEventCodec,
        settings: ProcessorSettings,
        metrics: ProcessorMetrics,
        sink: Sink,
        seen: Table,
        latest: Table,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._topology = topology
        self._codec = codec
        self._settings = settings
        self._metrics = metrics
        self._sink = sink
        self._seen = seen
        self._latest = latest
        self._clock = clock
        self._limits = ContractLimits()
        self._window_ms = round(settings.dedup_window_s * 1000)
        # Event-time progress of each partition (read by the watermark timer).
        self.progress: dict[int, SourceProgress] = {}
        self._seen_queue: dict[int, deque[tuple[int, str]]] = {}  # (last event, job)
        self._finished: dict[int, deque[tuple[int, str]]] = {}  # (ended at, job)
        self._queues_loaded = False

    async def handle(self, batch: Sequence[Incoming]) -> Sequence[object]:
        self._load_queues()
        rows = _Rows(self._seen, self._latest)
        sightings: list[tuple[int, Sighting]] = []
        edges: list[tuple[int, tuple[Dimension, AttemptEdge, bool]]] = []
        now = time.time()
        for partition, records in by_source(batch):
            latest_ms: int | None = None
            for record in records:
                at = self._one(record, rows, sightings, edges)
                if at is None:
                    continue
                stamp = record.timestamp_ms
                if stamp is not None:
                    self._metrics.latency.observe(max(0.0, now - stamp / 1000))
                    # Event time moves on no further than the record's own timestamp allows:
                    # one event claiming to be from the future must not carry the partition
                    # (and with it every outcome after) a day ahead.
                    at = min(at, stamp + self._settings.grace_ms)
                latest_ms = at if latest_ms is None else max(latest_ms, at)
            if latest_ms is not None:
                self.progress.setdefault(partition, SourceProgress()).saw(latest_ms, self._clock())
        self._metrics.events_in.labels(self._topology.job_events).inc(len(batch))
        for target, items in by_partition(sightings).items():
            value = encode(Sightings(tuple(items)))
            self._sink.send(self._topology.sightings, None, value, partition=target)
        for target, pairs in by_partition(edges).items():
            self._sink.send(self._topology.edges, None, encode(Edges(tuple(pairs))),
                            partition=target)  # fmt: skip
        rows.write()
        for partition in {record.partition for record in batch}:
            self._sweep(partition)
        return [record.token for record in batch]

    def _one(
        self,
        record: Incoming,
        rows: _Rows,
        sightings: list[tuple[int, Sighting]],
        edges: list[tuple[int, tuple[Dimension, AttemptEdge, bool]]],
    ) -> int | None:
        """Decides one record; returns its event time when it was accepted."""
        source = Record(record.value, record.topic, record.partition, record.offset,
                        record.timestamp_ms)  # fmt: skip
        try:
            step = first_stage(self._codec, source, seen_of=rows.seen_of,
                               latest_of=rows.latest_of, limits=self._limits,
                               max_ids=self._settings.dedup_max_ids,
                               window_ms=self._window_ms)  # fmt: skip
        except Exception as exc:  # whatever a step raises on: dead-letter it
            # Once, with the reason, and move on: raising would stop the worker, and the
            # restart would meet the same record again (a crash loop).
            log.exception("handler error on %s[%s]@%s", record.topic, record.partition,
                          record.offset)  # fmt: skip
            self._dead_letter(record, "handler_error", f"{type(exc).__name__}: {exc}")
            return None
        if isinstance(step, Rejected):
            self._dead_letter(record, step.violation.reason, step.violation.detail)
            return None
        if isinstance(step, Duplicate):
            self._metrics.duplicates.inc()
            return None
        job_id = step.event.job_id
        at = millis(step.event.occurred_at)
        rows.partitions[job_id] = record.partition
        if step.seen is not None:
            if step.seen_new:  # queued once per row: the sweep re-queues it while in use
                queue = self._seen_queue.setdefault(record.partition, deque())
                queue.append((step.seen.last_ms, job_id))
            rows.seen[job_id] = step.seen
        if step.sighting is not None:
            fingerprint = step.sighting.fingerprint
            sightings.append((partition_of(fingerprint, self._topology.partitions), step.sighting))
        if step.latest is not None:
            rows.latest[job_id] = step.latest
        edge = step.edge
        if edge is not None:
            stamp = record.timestamp_ms
            early = stamp is not None and edge.time_ms > stamp + self._settings.grace_ms
            for dimension, key in edge.counted_on():
                target = partition_of(dimension_key(dimension, key), self._topology.partitions)
                edges.append((target, (dimension, edge, early)))
            after = rows.latest_of(job_id)
            if edge.terminal and after is not None and after.ended:
                self._finished.setdefault(record.partition, deque()).append((edge.time_ms, job_id))
        return at

    def _dead_letter(self, record: Incoming, reason: str, detail: str) -> None:
        dead_letter(self._sink, self._topology.dlq, self._metrics, record, reason, detail)

    def forget(self) -> None:
        # Rebuilt from the tables, which then hold the new assignment's rows.
        self.progress.clear()
        self._seen_queue.clear()
        self._finished.clear()
        self._queues_loaded = False

    def _load_queues(self) -> None:
        """After a (re)start or a rebalance: the sweep queues from the rows the tables hold."""
        if self._queues_loaded:
            return
        self._queues_loaded = True
        seen: dict[int, list[tuple[int, str]]] = {}
        for job_id, stored in list(self._seen.items()):
            row = SeenEvents.from_json(stored)
            seen.setdefault(row.partition, []).append((row.last_ms, job_id))
        for partition, entries in seen.items():
            self._seen_queue[partition] = deque(sorted(entries))
        finished: list[tuple[int, str]] = []
        for job_id, stored in list(self._latest.items()):
            latest = LatestAttempt.from_json(stored)
            if latest.ended:
                finished.append((latest.started_at_ms, job_id))
        # A latest-attempt row has no partition of its own: its job's event-id row says which.
        # Its end time is not kept: the start stands for it (the row goes a little early).
        for at, job_id in sorted(finished):
            stored = self._seen.get(job_id)
            if stored is not None:
                partition = SeenEvents.from_json(stored).partition
                self._finished.setdefault(partition, deque()).append((at, job_id))

    def _sweep(self, partition: int) -> None:
        progress = self.progress.get(partition)
        if progress is None or progress.latest_ms is None:
            return
        now_ms = progress.latest_ms
        finished = self._finished.get(partition)
        while finished and finished[0][0] < now_ms - self._settings.horizon_ms:
            _, job_id = finished.popleft()
            stored = self._latest.get(job_id)
            if stored is not None and LatestAttempt.from_json(stored).ended:
                self._latest.delete(partition, job_id)
        queue = self._seen_queue.get(partition)
        while queue and queue[0][0] < now_ms - self._window_ms:
            _, job_id = queue.popleft()
            stored = self._seen.get(job_id)
            if stored is None:
                continue
            row = SeenEvents.from_json(stored)
            if row.partition != partition:
                continue
            if expired(row, now_ms, self._window_ms):
                self._seen.delete(partition, job_id)
            else:
                queue.append((row.last_ms, job_id))
