"""What a stage reads and writes, as small protocols: Faust's tables and the processors' output
satisfy them in a worker, dicts and lists in the broker-free harness."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Protocol

from processors.metrics import ProcessorMetrics
from streams.dlq import DeadLetter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Incoming:
    """One consumed record; `token` is what the shell acknowledges once the stage is done."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    token: object = None

    def dead_letter(self, reason: str, detail: str) -> DeadLetter:
        return DeadLetter(reason=reason, detail=detail, topic=self.topic,
                          partition=self.partition, offset=self.offset, key=self.key,
                          value=self.value)  # fmt: skip


class Sink(Protocol):
    """Where outputs go (`processors.output.Output` in a worker)."""

    def send(self, topic: str, key: bytes | None, value: bytes | None,
             headers: list[tuple[str, str | bytes | None]] | None = None,
             partition: int | None = None) -> None: ...  # fmt: skip

    def send_dead_letter(self, topic: str, letter: DeadLetter) -> None: ...

    async def delivered(self) -> None:
        """Returns once everything sent so far is on the broker (raises if something is not).
        In a worker, raises `Rebalanced` when the partitions changed hands meanwhile."""
        ...


class Rebalanced(Exception):  # noqa: N818 (not an error: the batch is simply dropped)
    """The worker's partitions changed hands while a batch was in flight. The stage stops where
    it is: it writes no row and sends nothing more for the batch, whose records are left
    unacknowledged; whoever owns them now reads them again. (Going on would write rows for
    partitions another worker has taken, from state `Stage.forget` has already dropped.)"""


class Table(Protocol):
    """Rows by key, each written for the partition whose records it derives from (a table's
    changelog partition is its source partition: whoever owns that partition after a rebalance
    recovers the row). Faust's table (`processors.shell.PartitionedTable`) or `MemoryTable`."""

    def get(self, key: str, /) -> Any: ...

    def items(self) -> Iterable[tuple[str, Any]]: ...

    def put(self, partition: int, key: str, value: Any) -> None: ...

    def delete(self, partition: int, key: str) -> None:
        """Removes the row; a key that is not there is left alone (nothing is written)."""
        ...


class MemoryTable(dict[str, Any]):
    """A table in a dict (the harness)."""

    def put(self, partition: int, key: str, value: Any) -> None:
        self[key] = value

    def delete(self, partition: int, key: str) -> None:
        self.pop(key, None)


class Stage(Protocol):
    async def handle(self, batch: Sequence[Incoming]) -> Sequence[object]:
        """Processes a batch (each partition's records in offset order); returns the tokens of
        the records now done, in each partition's offset order."""
        ...

    def forget(self) -> None:
        """Drops what is held in memory for the partitions (they were revoked: whoever owns them
        next reads the uncommitted records again)."""
        ...


def reject_internal(
    sink: Sink, dlq: str, metrics: ProcessorMetrics, record: Incoming, detail: str
) -> None:
    """An internal record a stage cannot read (a bug, or a foreign writer): dead-lettered once,
    with what is wrong, rather than a crash that the restart would meet again."""
    log.error("bad record on %s[%s]@%s: %s", record.topic, record.partition, record.offset,
              detail)  # fmt: skip
    dead_letter(sink, dlq, metrics, record, "handler_error", detail)


def dead_letter(sink: Sink, dlq: str, metrics: ProcessorMetrics, record: Incoming, reason: str,
                detail: str) -> None:  # fmt: skip
    """Sends `record` to the dead-letter topic with why, and counts it by reason."""
    sink.send_dead_letter(dlq, record.dead_letter(reason, detail))
    metrics.dead_letters.labels(reason).inc()


def by_source(batch: Sequence[Incoming]) -> Iterator[tuple[int, list[Incoming]]]:
    """The batch's records per partition, each partition's in the order given."""
    ordered = sorted(batch, key=lambda record: record.partition)  # stable: order kept
    for partition, records in groupby(ordered, key=lambda record: record.partition):
        yield partition, list(records)
