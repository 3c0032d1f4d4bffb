"""Stage 4, on attempt-counts: an attempt's counts on every dimension make its outcome.

A half whose partner is not in the same batch is kept in a table, not held: at least once, a
half can come twice (a restart recounts what it had counted but not committed), and a copy
arriving after its pair was joined must find the row, not wait forever for a partner. The half
that completes a row sends the outcome (again, for a copy: the same outcome; readers key it by
attempt). Joined rows stay for a horizon of event time, then go. A lone half stays until its
partner comes, however late: during a catch-up one concurrency partition can release many
minutes of event time before another releases the partner.

Most attempts have both halves in one batch: they are joined with no row written at all. Safe:
until the batch is committed both halves are read again after a crash, and a copy of one half
that comes after the commit (a concurrency restart's recount) makes a lone row, kept.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from processors.metrics import ProcessorMetrics
from processors.outcomes import join
from processors.records import Counts, decode
from processors.stages.ports import Incoming, Sink, Table, reject_internal
from processors.topology import Topology
from schemas.derived import encode_attempt_outcome


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
        self._rows: dict[int, deque[tuple[int, str]]] = {}  # partition -> (ended at, member)

    async def handle(self, batch: Sequence[Incoming]) -> Sequence[object]:
        rows: dict[str, dict[str, int]] = {}  # this batch's writes
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
                    rows[member] = stored or {}
                rows[member], outcome = join(rows[member], count)
                partitions[member] = record.partition
                ended[member] = count.edge.time_ms
                if outcome is None:
                    continue
                self._sink.send(self._topology.outcomes, outcome.job_id.encode(),
                                encode_attempt_outcome(outcome))  # fmt: skip
                joined.add(member)
                if member in fresh:  # both halves in this batch: no row needed
                    del rows[member]
        self._metrics.events_in.labels(self._topology.counts).inc(len(batch))
        for member, parts in rows.items():
            self._table.put(partitions[member], member, parts)
            if member in joined:
                self._expire(partitions[member], ended[member], member)
        return [record.token for record in batch]

    def _expire(self, partition: int, ended_ms: int, member: str) -> None:
        """Queues a joined row; drops joined rows a horizon older than this end."""
        queue = self._rows.setdefault(partition, deque())
        queue.append((ended_ms, member))
        while queue and queue[0][0] < ended_ms - self._horizon_ms:
            self._table.delete(partition, queue.popleft()[1])

    def _dead_letter(self, record: Incoming, detail: str) -> None:
        reject_internal(self._sink, self._topology.dlq, self._metrics, record, detail)

    def forget(self) -> None:
        """Nothing is held: the rows are in the table (the sweep queue of a revoked partition
        only lets some rows live longer)."""
