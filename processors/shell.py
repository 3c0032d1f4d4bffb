"""The adapter between a stage and Faust: one agent per stage, fed in batches.

The agent takes up to `batch_size` records (or what came within `within_s`) from its stream
without acknowledging them, lets through only each partition's next run of offsets
(`OffsetGuard`), hands them to the stage and acknowledges what the stage says is done. Faust
commits the acknowledged offsets after its pre-commit flush, which also flushes the stage's
outputs (`flush_outputs_before_commit`).

A batch belongs to the assignment it started under (`RebalanceFence`): one that a rebalance
overtakes is dropped unacknowledged, at the stage's next wait for its outputs, before it writes
rows for partitions that may be another worker's by then.

Under exactly_once (`Transactions`) the stage runs one source partition at a time, so that its
outputs go in that partition's transaction (`processors.transactional_output`), and a batch,
from its first output to its last acknowledgement, runs between two commits (`CommitGate`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

import faust

from processors.faust_workarounds import CommitGate, OffsetGuard
from processors.stages.ports import Incoming, Rebalanced, Sink, Stage, by_source
from streams.dlq import DeadLetter


def incoming(event: Any) -> Incoming:
    message = event.message
    timestamp = message.timestamp
    return Incoming(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=round(timestamp * 1000) if timestamp and timestamp > 0 else None,
        key=message.key,
        value=message.value,
        token=event,
    )


class RebalanceFence:
    """Tells whether a rebalance began since the running batch did. Each agent is its own task,
    so the batch's starting point is kept per task (a context variable)."""

    def __init__(self, rebalances: Callable[[], int], rebalancing: Callable[[], bool]) -> None:
        # Faust bumps the count in the consumer's thread as soon as partitions are revoked, so
        # it moves before the revocation reaches the tables on the event loop.
        self._rebalances = rebalances
        self._rebalancing = rebalancing
        self._started: ContextVar[int] = ContextVar("batch_started_at_rebalance")

    @classmethod
    def of(cls, app: faust.App) -> RebalanceFence:
        return cls(lambda: app.rebalancing_count, lambda: bool(app.rebalancing))

    def begin(self) -> bool:
        """Starts a batch; False while a rebalance is under way (its records may be of revoked
        partitions: they come again once the assignment is settled)."""
        self._started.set(self._rebalances())
        return not self._rebalancing()

    def check(self) -> None:
        """Raises `Rebalanced` if a rebalance began since `begin`."""
        if self._rebalancing() or self._rebalances() != self._started.get():
            raise Rebalanced


class FencedSink:
    """A stage's sink: waiting for its outputs is where a batch a rebalance overtook stops."""

    def __init__(self, sink: Sink, fence: RebalanceFence) -> None:
        self._sink = sink
        self._fence = fence

    def send(self, topic: str, key: bytes | None, value: bytes | None,
             headers: list[tuple[str, str | bytes | None]] | None = None,
             partition: int | None = None) -> None:  # fmt: skip
        self._sink.send(topic, key, value, headers, partition)

    def send_dead_letter(self, topic: str, letter: DeadLetter) -> None:
        self._sink.send_dead_letter(topic, letter)

    async def delivered(self) -> None:
        await self._sink.delivered()
        self._fence.check()


@dataclass(frozen=True)
class Transactions:
    """Exactly once: where outputs say which partition they derive from, whether some wait to
    be sent, and the gate that keeps commits between batches."""

    source: Callable[[str, int], AbstractContextManager[None]]
    pending: Callable[[], bool]
    gate: CommitGate


def run_stage(
    app: faust.App,
    topic: Any,
    name: str,
    stage: Stage,
    guard: OffsetGuard,
    fence: RebalanceFence,
    *,
    batch_size: int,
    within_s: float,
    on_batch: Callable[[], None] | None = None,
    transactions: Transactions | None = None,
) -> None:
    """Registers the agent that runs `stage` over `topic`."""

    async def handle(batch: list[Incoming]) -> list[object]:
        if transactions is None:
            return list(await stage.handle(batch))
        done: list[object] = []
        for partition, records in by_source(batch):
            with transactions.source(records[0].topic, partition):
                done += await stage.handle(records)
        return done

    async def process(stream: faust.StreamT[bytes]) -> None:
        batches = cast(faust.Stream[bytes], stream).noack_take(batch_size, within_s)
        async for events in batches:
            if not fence.begin():
                continue
            try:
                ordered = await guard.in_order(events)
                fence.check()  # the guard asks the broker: a rebalance may have begun meanwhile
                if not ordered:
                    continue
                if on_batch is not None:
                    on_batch()
                async with transactions.gate.batch() if transactions else nullcontext():
                    done = await handle([incoming(event) for event in ordered])
                    fence.check()
                    for token in done:
                        await stream.ack(token)  # type: ignore[arg-type]
            except Rebalanced:
                # Unacknowledged: read again by whoever owns the partitions now. The guard
                # counted the batch as processed: its positions start over from the commits.
                guard.forget()
                continue

    app.agent(topic, name=f"processors.{name}")(process)
