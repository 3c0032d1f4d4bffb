"""The adapter between a stage and Faust: one agent per stage, fed in batches.

The agent takes up to `batch_size` records (or what came within `within_s`) from its stream
without acknowledging them, lets through only each partition's next run of offsets
(`OffsetGuard`), hands them to the stage and acknowledges what the stage says is done. Faust
commits the acknowledged offsets after its pre-commit flush, which also flushes the stage's
outputs (`flush_outputs_before_commit`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import faust

from processors.faust_workarounds import OffsetGuard
from processors.stages.ports import Incoming, Stage


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


def run_stage(
    app: faust.App,
    topic: Any,
    name: str,
    stage: Stage,
    guard: OffsetGuard,
    *,
    batch_size: int,
    within_s: float,
    on_batch: Callable[[], None] | None = None,
) -> None:
    """Registers the agent that runs `stage` over `topic`."""

    async def process(stream: faust.StreamT[bytes]) -> None:
        batches = cast(faust.Stream[bytes], stream).noack_take(batch_size, within_s)
        async for events in batches:
            ordered = await guard.in_order(events)
            if not ordered:
                continue
            if on_batch is not None:
                on_batch()
            for token in await stage.handle([incoming(event) for event in ordered]):
                await stream.ack(token)  # type: ignore[arg-type]

    app.agent(topic, name=f"processors.{name}")(process)
