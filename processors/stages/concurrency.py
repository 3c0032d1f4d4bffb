"""Stage 3, on attempt-edges: release edges in event-time order, count what runs at once.

Edges come from every job-events partition in no useful order, with each source partition's
event time (`EventTime`). An edge waits, in memory, until the watermark (the least event time
every source has reached, `processors.concurrency.watermark`) passes it; then the edges are
released in event-time order and counted (`processors.concurrency.apply`), so counts do not depend
on arrival order and a replay gives the same numbers.

A record is held unacknowledged until every edge in it is released, so its offset is not
committed: a restarted or rebalanced worker reads it again. Only the per-key states are in a
table, written once per key per batch and only after the counts they record are delivered (a
state saying an end was counted, with the count lost in a crash, would never count it again).
An edge that arrives after the watermark passed it is late: counted at once within the horizon,
dropped (and counted as dropped) beyond it. An early edge (its event claims a time after its
record was written, `processors.records.Edges`) is counted at once too, rather than held, with
every record after it unacknowledged, until event time catches up with it (a day, for an event
from a clock a day ahead). Both show in `jobtrail_processor_late_attempt_edges_total{handling}`.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from processors.attempts import AttemptEdge, Dimension, dimension_key
from processors.concurrency import (
    EVERYTHING,
    Count,
    KeyState,
    Mark,
    apply,
    compact,
    expire,
    release_order,
    watermark,
)
from processors.metrics import ProcessorMetrics
from processors.records import Counts, Edges, EventTime, by_partition, decode, encode, partition_of
from processors.stages.ports import Incoming, Sink, Table, by_source, reject_internal
from processors.topology import Topology


@dataclass(slots=True)
class _Arrival:
    """A record in offset order, done once none of its edges waits any more."""

    token: object
    waiting: int = 0


Held = tuple[tuple[int, int, str, int], int, Dimension, AttemptEdge, _Arrival]


@dataclass(slots=True)
class PartitionView:
    """What one attempt-edges partition holds in memory: the sources' marks, edges waiting for
    the watermark, records not yet acknowledged, and the key states in use."""

    marks: dict[int, Mark] = field(default_factory=dict)
    heap: list[Held] = field(default_factory=list)
    arrivals: deque[_Arrival] = field(default_factory=deque)
    states: dict[str, KeyState] = field(default_factory=dict)
    released_ms: int | None = None
    partition: int = 0

    def waiting_since(self) -> int | None:
        return self.heap[0][0][0] if self.heap else None


class ConcurrencyStage:
    def __init__(
        self, *, topology: Topology, horizon_ms: int, expiry_ms: int, metrics: ProcessorMetrics,
        sink: Sink, key_states: Table,
    ) -> None:  # fmt: skip
        self._topology = topology
        self._horizon_ms = horizon_ms
        self._expiry_ms = expiry_ms
        self._metrics = metrics
        self._sink = sink
        self._table = key_states
        self.views: dict[int, PartitionView] = {}
        self._sequence = itertools.count()  # ties in the heap never compare edges

    async def handle(self, batch: Sequence[Incoming]) -> Sequence[object]:
        done: list[object] = []
        for partition, records in by_source(batch):
            view = self.views.setdefault(partition, PartitionView())
            counts: list[Count] = []
            dirty: set[str] = set()
            view.partition = partition
            for record in records:
                arrival = _Arrival(record.token)
                view.arrivals.append(arrival)
                self._receive(view, record, arrival, counts, dirty)
            now = self._release(view, counts, dirty)
            await self._emit(view, counts, dirty, now)
            while view.arrivals and view.arrivals[0].waiting == 0:
                done.append(view.arrivals.popleft().token)
        self._metrics.events_in.labels(self._topology.edges).inc(len(batch))
        return done

    def held(self) -> int:
        """Records held unacknowledged, over every partition."""
        return sum(len(view.arrivals) for view in self.views.values())

    def forget(self) -> None:
        # Every partition seeks back to its committed offset after a rebalance, so whatever
        # was held is read again, by whoever owns it now.
        self.views.clear()

    def _receive(
        self, view: PartitionView, record: Incoming, arrival: _Arrival, counts: list[Count],
        dirty: set[str],
    ) -> None:  # fmt: skip
        try:
            decoded = decode(record.value)
        except ValueError as exc:
            self._dead_letter(record, str(exc))
            return
        if isinstance(decoded, EventTime):
            known = view.marks.get(decoded.source)
            time_ms = decoded.mark.time_ms if known is None else max(decoded.mark.time_ms,
                                                                      known.time_ms)  # fmt: skip
            view.marks[decoded.source] = Mark(time_ms, decoded.mark.idle)
            return
        if not isinstance(decoded, Edges):
            self._dead_letter(record, f"not an attempt edge: {type(decoded).__name__}")
            return
        for dimension, edge, early in decoded.items:
            released = view.released_ms
            if released is not None and edge.time_ms <= released:
                late = edge.time_ms < released - self._horizon_ms
                self._metrics.late_edges.labels("dropped" if late else "counted").inc()
                if not late:
                    self._count(view, dimension, edge, counts, dirty)
                continue
            if early:
                self._metrics.late_edges.labels("early").inc()
                self._count(view, dimension, edge, counts, dirty)
                continue
            order = release_order(edge)
            heapq.heappush(view.heap, (order, next(self._sequence), dimension, edge, arrival))
            arrival.waiting += 1

    def _release(self, view: PartitionView, counts: list[Count], dirty: set[str]) -> int | None:
        """Counts the edges the watermark has passed; the new release time, if it moved."""
        now = watermark(view.marks, self._topology.partitions)
        if now is None or (view.released_ms is not None and now <= view.released_ms):
            return None
        latest = view.released_ms if view.released_ms is not None else -1
        heap = view.heap
        while heap and heap[0][0][0] <= now:
            _, _, dimension, edge, arrival = heapq.heappop(heap)
            self._count(view, dimension, edge, counts, dirty)
            arrival.waiting -= 1
            latest = max(latest, edge.time_ms)
        if now == EVERYTHING:  # all idle: released up to the last edge, not to the end of time
            now = max([latest, *(mark.time_ms for mark in view.marks.values())])
        return now

    def _count(self, view: PartitionView, dimension: Dimension, edge: AttemptEdge,
               counts: list[Count], dirty: set[str]) -> None:  # fmt: skip
        key = dimension_key(dimension, dict(edge.counted_on())[dimension])
        state = view.states.get(key)
        if state is None:
            stored = self._table.get(key)
            state = view.states[key] = KeyState() if stored is None else KeyState.from_json(stored)
        if not state.remembers(edge):
            self._metrics.late_edges.labels("forgotten").inc()
        elif not edge.is_start and (expired := expire(state, edge.time_ms, self._expiry_ms)):
            self._metrics.expired_attempts.labels(dimension.value).inc(len(expired))
        count = apply(state, edge, dimension)
        if count is not None:
            counts.append(count)
        dirty.add(key)

    async def _emit(self, view: PartitionView, counts: list[Count], dirty: set[str],
                    now: int | None) -> None:  # fmt: skip
        partitions = self._topology.partitions
        grouped = by_partition((partition_of(c.edge.member, partitions), c) for c in counts)
        for target, items in grouped.items():
            self._sink.send(self._topology.counts, None, encode(Counts(tuple(items))),
                            partition=target)  # fmt: skip
        if counts:
            await self._sink.delivered()  # the counts first, then the states that say so
        if now is not None:
            view.released_ms = now
            self._metrics.watermark.set(now / 1000)
        released = view.released_ms if view.released_ms is not None else 0
        for key in dirty:
            state = view.states[key]
            compact(state, forget_before_ms=released - self._horizon_ms)
            self._table.put(view.partition, key, state.to_json())

    def _dead_letter(self, record: Incoming, detail: str) -> None:
        reject_internal(self._sink, self._topology.dlq, self._metrics, record, detail)
