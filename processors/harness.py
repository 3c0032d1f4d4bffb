"""The processors without a broker: the real stages over in-memory topics and tables.

`Harness` feeds job-events records (per source partition, in batches, the partitions interleaved
as a seeded random choice decides), sends each source's event time as the worker's timer does
(`mark_to_send`, on a simulated clock), and runs every stage over what its topic holds until
nothing moves. Unit tests use it to check the streaming result against the recomputation under
any interleaving and batch size, and to restart a stage from its tables and its committed
(acknowledged) offsets, as a crash would, or to rebalance in the middle of a batch: the stages
forget what they held while a batch waits for its outputs, as Faust's revocation makes them.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from prometheus_client import CollectorRegistry

from processors.concurrency import Mark, SourceProgress, mark_to_send
from processors.metrics import ProcessorMetrics
from processors.records import EventTime, encode
from processors.settings import ProcessorSettings
from processors.shell import FencedSink, RebalanceFence
from processors.stages.concurrency import ConcurrencyStage
from processors.stages.dedup import DedupStage
from processors.stages.ingest import IngestStage
from processors.stages.join import JoinStage
from processors.stages.ports import Incoming, MemoryTable, Rebalanced, Stage
from processors.topology import TABLES, Topology
from schemas.codec import JobEventCodec, SingleObjectCodec
from schemas.derived import (
    AttemptOutcome,
    VectorizeRequest,
    decode_attempt_outcome,
    decode_vectorize_request,
)
from streams.dlq import DeadLetter

TOPOLOGY = Topology(
    partitions=4,
    job_events="job-events",
    dlq="job-events.dlq",
    requests="vectorize-requests",
    outcomes="attempt-outcomes",
    sightings="processors.fingerprint-sightings",
    edges="processors.attempt-edges",
    counts="processors.attempt-counts",
)


@dataclass(slots=True)
class MemorySink:
    """Topics as lists of (key, value) per partition; dead letters as they were sent."""

    logs: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    dead_letters: list[DeadLetter] = field(default_factory=list)
    flushes: int = 0
    on_delivered: Callable[[], None] | None = None  # runs while a stage waits for its outputs

    def send(self, topic: str, key: bytes | None, value: bytes | None,
             headers: list[tuple[str, str | bytes | None]] | None = None,
             partition: int | None = None) -> None:  # fmt: skip
        self.logs[topic, partition or 0].append((key, value))  # None: a tombstone

    def send_dead_letter(self, topic: str, letter: DeadLetter) -> None:
        self.dead_letters.append(letter)

    async def delivered(self) -> None:
        self.flushes += 1
        if self.on_delivered is not None:
            self.on_delivered()

    def values(self, topic: str) -> list[bytes]:
        return [value for (name, _), log in sorted(self.logs.items()) if name == topic
                for _, value in log if value is not None]  # fmt: skip


class Harness:
    def __init__(
        self,
        settings: ProcessorSettings | None = None,
        *,
        topology: Topology = TOPOLOGY,
        codec: JobEventCodec | None = None,
        seed: int = 0,
        batch_size: int = 100,
        rebalance_chance: float = 0.0,
    ) -> None:
        """`rebalance_chance`: how likely a rebalance is while a stage waits for its outputs
        (the shell's `RebalanceFence` then stops the batch)."""
        self.settings = settings or ProcessorSettings(embedding_model="model-a")
        self.topology = topology
        self.codec = codec or SingleObjectCodec()
        self.sink = MemorySink()
        self.tables = {name: MemoryTable() for name in TABLES}
        self.rng = random.Random(seed)
        self.batch_size = batch_size
        self.now = 0.0  # the simulated monotonic clock
        self.metrics = ProcessorMetrics.create(CollectorRegistry())
        self._read: dict[tuple[str, int], int] = defaultdict(int)  # next offset to hand out
        self._done: dict[tuple[str, int], set[int]] = defaultdict(set)  # acknowledged offsets
        self._marks_sent: dict[int, tuple[Mark, float]] = {}
        self._timestamps: dict[tuple[int, int], int] = {}  # job-events (partition, offset)
        self.held_at_end = 0  # records held unacknowledged once the sources were all read
        self.rebalance_chance = rebalance_chance
        self.rebalances = 0
        self.sink.on_delivered = self._maybe_rebalance
        self.fence = RebalanceFence(lambda: self.rebalances, lambda: False)
        self.start()

    def start(self) -> None:
        """(Re)creates the stages: what they held in memory is gone, the tables stay."""
        topology, metrics, tables = self.topology, self.metrics, self.tables
        latest, prints, keys, halves, seen = (tables[name] for name in TABLES)
        common: dict[str, Any] = {"topology": topology, "metrics": metrics,
                                  "sink": FencedSink(self.sink, self.fence)}  # fmt: skip
        self.ingest = IngestStage(codec=self.codec, settings=self.settings, seen=seen,
                                  latest=latest, clock=lambda: self.now, **common)  # fmt: skip
        self.dedup = DedupStage(model=self.settings.embedding_model, fingerprints=prints, **common)
        self.concurrency = ConcurrencyStage(horizon_ms=self.settings.horizon_ms, key_states=keys,
                                            expiry_ms=self.settings.attempt_expiry_ms,
                                            **common)  # fmt: skip
        self.join = JoinStage(horizon_ms=self.settings.horizon_ms, halves=halves, **common)
        self._marks_sent.clear()

    def crash(self) -> None:
        """Loses what the stages held and rewinds every topic to its committed offsets (the
        first offset not acknowledged), as a worker killed and restarted would."""
        for key in list(self._read):
            self._read[key] = self.committed(key)
        self.start()

    def rebalance(self) -> None:
        """What a revocation does to a worker that keeps its partitions: every stage forgets
        what it held and every topic is read again from its committed offsets; the tables (as
        recovered from their changelogs) stay."""
        self.rebalances += 1
        for key in list(self._read):
            self._read[key] = self.committed(key)
        for stage in (self.ingest, self.dedup, self.concurrency, self.join):
            stage.forget()
        self._marks_sent.clear()

    def _maybe_rebalance(self) -> None:
        if self.rebalance_chance and self.rng.random() < self.rebalance_chance:
            self.rebalance()

    def committed(self, key: tuple[str, int]) -> int:
        done = self._done[key]
        offset = 0
        while offset in done:
            offset += 1
        return offset

    def produce(
        self,
        records_by_partition: Mapping[int, Sequence[bytes]],
        timestamps: Mapping[int, Sequence[int]] | None = None,
    ) -> None:
        """Appends job-events records, with their record timestamps (ms) where given."""
        for partition, values in records_by_partition.items():
            log = self.sink.logs[self.topology.job_events, partition]
            for index, value in enumerate(values):
                if timestamps is not None:
                    self._timestamps[partition, len(log)] = timestamps[partition][index]
                log.append((None, value))

    async def run(self, *, crash_every: int = 0) -> None:
        """Runs until every record is consumed and every stage is still; `crash_every` > 0
        crashes after every that many source batches."""
        batches = 0
        source = self.topology.job_events
        while True:
            pending = [p for p in range(self.topology.partitions) if self._backlog(source, p)]
            if not pending:
                break
            await self._step(self.ingest, source, self.rng.choice(pending))
            batches += 1
            self.now += 0.01
            self._send_marks()
            if self.rng.random() < 0.5:
                await self._drain()
            if crash_every and batches % crash_every == 0:
                self.crash()
        await self._drain()
        self.held_at_end = self.concurrency.held()
        # Caught up: quiet long enough for every source to go idle.
        for _ in range(3):
            self.now += self.settings.idle_after_s + 1
            self._send_marks()
            await self._drain()

    def outcomes(self) -> list[AttemptOutcome]:
        return [decode_attempt_outcome(v) for v in self.sink.values(self.topology.outcomes)]

    def requests(self) -> list[VectorizeRequest]:
        return [decode_vectorize_request(v) for v in self.sink.values(self.topology.requests)]

    def _backlog(self, topic: str, partition: int) -> int:
        return len(self.sink.logs.get((topic, partition), ())) - self._read[topic, partition]

    def _send_marks(self) -> None:
        for partition in range(self.topology.partitions):
            progress = self.ingest.progress.setdefault(partition, SourceProgress())
            caught_up = self._backlog(self.topology.job_events, partition) == 0
            mark = mark_to_send(progress, self._marks_sent.get(partition), self.now,
                                grace_ms=self.settings.grace_ms,
                                idle_after_s=self.settings.idle_after_s, caught_up=caught_up,
                                repeat_s=5.0)  # fmt: skip
            if mark is None:
                continue
            self._marks_sent[partition] = (mark, self.now)
            for target in range(self.topology.partitions):
                self.sink.send(self.topology.edges, None, encode(EventTime(partition, mark)),
                               partition=target)  # fmt: skip

    async def _drain(self) -> None:
        """Runs the downstream stages, in random order, until none has anything to read."""
        stages: list[tuple[Stage, str]] = [(self.dedup, self.topology.sightings),
                                           (self.concurrency, self.topology.edges),
                                           (self.join, self.topology.counts)]  # fmt: skip
        while True:
            partitions = range(self.topology.partitions)
            work = [(stage, topic, p) for stage, topic in stages for p in partitions
                    if self._backlog(topic, p)]  # fmt: skip
            if not work:
                return
            stage, topic, partition = self.rng.choice(work)
            await self._step(stage, topic, partition)

    async def _step(self, stage: Stage, topic: str, partition: int) -> None:
        start = self._read[topic, partition]
        log = self.sink.logs[topic, partition]
        size = self.rng.randint(1, self.batch_size)
        stamps = self._timestamps if topic == self.topology.job_events else {}
        batch = [Incoming(topic, partition, offset, stamps.get((partition, offset)), key, value,
                          (topic, partition, offset))
                 for offset, (key, value) in enumerate(log[start:start + size], start)]  # fmt: skip
        self._read[topic, partition] = start + len(batch)
        self.fence.begin()
        try:
            done = await stage.handle(batch)
            self.fence.check()
        except Rebalanced:
            return  # unacknowledged: read again
        for token in done:
            name, part, offset = cast(tuple[str, int, int], token)
            self._done[name, part].add(offset)
