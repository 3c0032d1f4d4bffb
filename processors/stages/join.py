"""Stage 4, on attempt-counts: an attempt's counts on every dimension make its outcome.

A half whose partner is not in the same batch is kept in a table, not held: at least once, a
half can come twice (a restart recounts what it had counted but not committed), and a copy
arriving after its pair was joined must find the row, not wait forever for a partner. The half
that completes a row sends the outcome (again, for a copy: the same outcome; readers key it by
attempt). Joined rows stay for a horizon of event time, then go. A lone half stays until its
partner comes, however late: during a catch-up one concurrency partition can release minutes,
or in a replay of the topics months, of event time before another releases the partner, so no
event-time deadline is safe for it. (A half whose partner never comes needs an edge dropped on
one dimension only: past the horizon, counted in `jobtrail_processor_late_attempt_edges_total`.)

Most attempts have both halves in one batch: they are joined with no row written at all. Safe:
until the batch is committed both halves are read again after a crash, and a copy of one half
that comes after the commit (a concurrency restart's recount) makes a lone row, kept.

A row carries its attempt's end time, so the expiry queue is rebuilt from the table after a
restart or a rebalance (without it, joined rows leaked at every restart). A row's partition is
its member's (`partition_of`, as the concurrency stage sends its counts).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

from processors.metrics import ProcessorMetrics
from processors.outcomes import join
from processors.records import Counts, decode, partition_of
from processors.stages.ports import Incoming, Sink, Table, reject_internal
from processors.topology import Topology
from schemas.derived import encode_attempt_outcome


def _parts(row: dict[str, Any]) -> dict[str, int]:
    """A row's counts per dimension (rows written before the end time was kept: the row)."""
    return dict(row["c"]) if "c" in row else dict(row)


class JoinStage:
    def __init__(
        self, *, topology: Topology, horizon_ms: int, metrics: ProcessorMetrics, sink: Sink,
        halves: Table,
    ) -> None:  # fmt: skip
        self._topology = topology
        self._horizon_ms = horizon_ms
        self._metrics = metrics
        self._sink = sink
        self._table = halves
        self._due: dict[int, list[tuple[int, str]]] = {}  # partition -> heap of (due at, member)
        self._latest: dict[int, int] = {}  # partition -> latest end seen (event time)
        self._loaded = False

    async def handle(self, batch: Sequence[Incoming]) -> Sequence[object]:
        self._load()
        rows: dict[str, dict[str, int]] = {}  # this batch's counts per member
        partitions: dict[str, int] = {}  # member -> partition
        ended: dict[str, int] = {}  # member -> its end (event time)
        fresh: set[str] = set()  # members with no row before this batch
        joined: set[str] = set()
        for record in batch:
            try:
                decoded = decode(record.value)
                if not isinstance(decoded, Counts):
                    raise ValueError(f"not an attempt count: {type(decoded).__name__}")
            except ValueError as exc:
                self._dead_letter(record, str(exc))
                continue
            for count in decoded.items:
                member = count.edge.member
                if member not in rows:
                    stored = self._table.get(member)
                    if stored is None:
                        fresh.add(member)
                    rows[member] = {} if stored is None else _parts(stored)
                rows[member], outcome = join(rows[member], count)
                partitions[member] = record.partition
                ended[member] = at = count.edge.time_ms
                self._latest[record.partition] = max(self._latest.get(record.partition, at), at)
                if outcome is None:
                    continue
                self._sink.send(self._topology.outcomes, outcome.job_id.encode(),
                                encode_attempt_outcome(outcome))  # fmt: skip
                joined.add(member)
                if member in fresh:  # both halves in this batch: no row needed
                    del rows[member]
        self._metrics.events_in.labels(self._topology.counts).inc(len(batch))
        for member, parts in rows.items():
            partition, at = partitions[member], ended[member]
            self._table.put(partition, member, {"c": parts, "t": at, "j": member in joined})
            if member in joined:
                self._queue(partition, member, at)
        for partition in {record.partition for record in batch}:
            self._sweep(partition)
        return [record.token for record in batch]

    def _queue(self, partition: int, member: str, ended_ms: int) -> None:
        heapq.heappush(self._due.setdefault(partition, []), (ended_ms + self._horizon_ms, member))

    def _sweep(self, partition: int) -> None:
        """Drops the joined rows a horizon older than the partition's latest end."""
        heap, now = self._due.get(partition, []), self._latest.get(partition)
        while heap and now is not None and heap[0][0] < now:
            self._table.delete(partition, heapq.heappop(heap)[1])  # gone already: a no-op

    def _load(self) -> None:
        """After a (re)start or a rebalance: the expiry queue from the joined rows the table
        holds."""
        if self._loaded:
            return
        self._loaded = True
        for member, row in list(self._table.items()):
            if row.get("j"):
                self._queue(partition_of(member, self._topology.partitions), member, row["t"])

    def _dead_letter(self, record: Incoming, detail: str) -> None:
        reject_internal(self._sink, self._topology.dlq, self._metrics, record, detail)

    def forget(self) -> None:
        """The queue is rebuilt from the table, which then holds the new assignment's rows."""
        self._due.clear()
        self._latest.clear()
        self._loaded = False
