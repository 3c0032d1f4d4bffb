"""The worker's timers: event time sent to the concurrency stage, lag, stalls, the idle stop."""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

import faust

from processors.concurrency import Mark, SourceProgress, mark_to_send
from processors.faust_workarounds import OffsetGuard, fetch_flags
from processors.metrics import ProcessorMetrics
from processors.records import EventTime, encode
from processors.settings import ProcessorSettings
from processors.shell import Transactions
from processors.stages.concurrency import ConcurrencyStage
from processors.stages.ingest import IngestStage
from processors.stages.ports import Sink
from processors.topology import Topology

log = logging.getLogger(__name__)

# Behind, yet nothing consumed this long: a stall worth a warning that says where it is.
STALL_WARN_S = 30.0
# An unchanged mark is sent again this often, for a concurrency worker that restarted and lost
# the marks it held in memory.
REPEAT_MARK_S = 5.0


class Watch:
    def __init__(self, app: faust.App, *, settings: ProcessorSettings, topology: Topology,
                 guard: OffsetGuard, ingest: IngestStage, concurrency: ConcurrencyStage,
                 sink: Sink, metrics: ProcessorMetrics,
                 transactions: Transactions | None = None) -> None:  # fmt: skip
        self._app = app
        self._settings = settings
        self._topology = topology
        self._guard = guard
        self._ingest = ingest
        self._concurrency = concurrency
        self._sink = sink
        self._metrics = metrics
        self._marks_sent: dict[int, tuple[Mark, float]] = {}
        self._transactions = transactions
        # Exactly once (`transactions`), edges reach the concurrency stage when their transaction
        # commits, while a mark goes at once: a mark made from what ingest has processed could
        # pass edges still to come, which would then count as late. So marks are made from what
        # ingest had processed at the last commit.
        self._progress = ingest.progress if transactions is None else {}
        if transactions is not None:
            transactions.gate.after_commit(self._committed)
        self._last_consumed = time.monotonic()
        self._stall_warned = 0.0

    def _committed(self) -> None:
        for partition, live in self._ingest.progress.items():
            if live.latest_ms is not None and live.last_seen is not None:
                committed = self._progress.setdefault(partition, SourceProgress())
                committed.saw(live.latest_ms, live.last_seen)

    def _all_committed(self, partition: int) -> bool:
        """Whether the marks' progress is all ingest has processed (an idle mark lets the
        concurrency stage release everything: nothing processed may still be uncommitted)."""
        live = self._ingest.progress.get(partition)
        committed = self._progress.get(partition)
        return live is None or (committed is not None and committed.latest_ms == live.latest_ms)

    def consumed(self) -> None:
        """Data came in (event-time records do not count: they come when nothing else does)."""
        self._last_consumed = time.monotonic()

    def install(self) -> None:
        app = self._app

        @app.timer(self._settings.watermark_interval_s, name="processors.event_time")  # type: ignore[untyped-decorator]
        async def event_time(_: Any) -> None:
            await self.report_event_time()

        @app.timer(1.0, name="processors.lag")  # type: ignore[untyped-decorator]
        async def lag(_: Any) -> None:
            await self.report_lag()

    async def _behind(self, tp: Any) -> int | None:
        """Records of `tp` not processed yet; None when unknown: not fetched from yet (just
        assigned), or no longer this worker's (a rebalance while we asked)."""
        start = await self._guard.next_offset(tp)
        consumer = self._app.consumer
        if tp not in consumer.assignment():  # checked with no await before the read below
            return None
        highwater = consumer.highwater(tp)
        return None if highwater is None else highwater - start

    async def report_event_time(self) -> None:
        now = time.monotonic()
        for tp in list(self._app.consumer.assignment()):
            if tp.topic != self._topology.job_events:
                continue
            behind = await self._behind(tp)
            if behind is None:
                continue
            progress = self._progress.setdefault(tp.partition, SourceProgress())
            mark = mark_to_send(progress, self._marks_sent.get(tp.partition), now,
                                grace_ms=self._settings.grace_ms,
                                idle_after_s=self._settings.idle_after_s,
                                caught_up=behind <= 0 and self._all_committed(tp.partition),
                                repeat_s=REPEAT_MARK_S)  # fmt: skip
            if mark is None:
                continue
            self._marks_sent[tp.partition] = (mark, now)
            value = encode(EventTime(tp.partition, mark))
            for target in range(self._topology.partitions):
                self._sink.send(self._topology.edges, None, value, partition=target)

    async def report_lag(self) -> None:
        topology = self._topology
        sources = {topology.job_events, topology.sightings, topology.edges, topology.counts}
        lag: dict[str, int] = {}
        lagging: list[Any] = []
        for tp in list(self._app.consumer.assignment()):
            if tp.topic not in sources:
                continue  # table changelogs: read during recovery only
            behind = await self._behind(tp)
            if behind is None:
                continue
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, behind)
            if behind > 0:
                lagging.append(tp)
                await self._guard.check_tail(tp, time.monotonic())
        for topic, value in lag.items():
            self._metrics.lag.labels(topic).set(value)
        now = time.monotonic()
        quiet = now - self._last_consumed
        held = self._concurrency.held()
        if (lagging or held) and quiet >= STALL_WARN_S and now - self._stall_warned >= STALL_WARN_S:
            self._stall_warned = now
            await self._warn_stalled(lagging, held, quiet)
        pending = self._transactions is not None and self._transactions.pending()
        idle = not any(lag.values()) and not held and not pending
        if (self._settings.idle_stop_s and quiet >= self._settings.idle_stop_s and idle
                and await self._caught_up(sources)):  # fmt: skip
            os.kill(os.getpid(), signal.SIGTERM)  # the worker's own graceful stop and commit

    async def _caught_up(self, sources: set[str]) -> bool:
        """The lag above is from the consumer's copy of each partition's end, as old as its last
        fetch; before the worker stops itself the broker is asked. (Exactly once this matters:
        outputs become readable only when their transaction commits, seconds after they were
        sent.)"""
        for tp in list(self._app.consumer.assignment()):
            if tp.topic in sources and not await self._guard.caught_up(tp):
                return False
        return True

    async def _warn_stalled(self, lagging: list[Any], held: int, quiet: float) -> None:
        """Names each lagging partition with its read position, what was processed, the high
        watermark and whether Faust stopped fetching it, and what each attempt-edges partition
        waits for."""
        consumer: Any = self._app.consumer
        parts = []
        for tp in lagging:
            position = await consumer.position(tp)
            if tp not in consumer.assignment():  # revoked meanwhile (see `_behind`)
                continue
            flags = " ".join(fetch_flags(self._app, tp))
            parts.append(f"{tp.topic}[{tp.partition}] position={position}"
                         f" processed={self._guard.processed.get((tp.topic, tp.partition))}"
                         f" highwater={consumer.highwater(tp)} {flags}")  # fmt: skip
        for partition, view in sorted(self._concurrency.views.items()):
            since = view.waiting_since()
            if since is not None:
                marks = {source: (mark.time_ms, mark.idle) for source, mark in view.marks.items()}
                parts.append(f"{self._topology.edges}[{partition}] holds {len(view.heap)} edges,"
                             f" from {since} ms; marks {marks}")  # fmt: skip
        state = f"flow active: {consumer.flow_active}, rebalancing: {self._app.rebalancing}"
        log.warning("behind, yet nothing consumed for %.0f s (%s, %s held): %s", quiet, state,
                    held, "; ".join(parts))  # fmt: skip
