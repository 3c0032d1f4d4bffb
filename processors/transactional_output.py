"""The processors' outputs under exactly_once: each in the Kafka transaction that commits the
offsets of the records it derives from.

Faust keeps one transactional producer per source partition (transactional id
`{app id}-{topic group}-{partition}`) and commits the acknowledged offsets of that partition in
its transaction, with the table rows written for that partition. A stage's outputs go to any
partition of their topics, so Faust's own choice of transaction (by the destination partition)
would not be the one that commits their source: the shell runs a stage one source partition at a
time under exactly_once (`source`), and every output is sent in that partition's transaction. A
crash or a rebalance before the commit aborts the transaction with its offsets: the records are
read again, and readers (read_committed, librdkafka's default and Faust's under exactly_once)
see each output once. Internal topics carry transaction markers then, which the offset guard
tells apart from lost records (`processors.offset_probe`).

Sends are buffered and go to Faust's producer (an async API) when the stage waits for its
outputs, or before Faust commits (`processors.faust_workarounds.flush_outputs_before_commit`).
What is sent outside any batch (the timers' event-time marks, the model announcement) goes
through the librdkafka output (`outside`): a mark or an announcement sent twice changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import faust

from processors.faust_workarounds import has_transaction
from processors.output import OutputDeliveryError
from processors.stages.ports import Sink
from streams.dlq import DeadLetter, fit

log = logging.getLogger(__name__)

Headers = list[tuple[str, str | bytes | None]]


@dataclass(frozen=True, slots=True)
class _Pending:
    transactional_id: str
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    partition: int | None


class TransactionalOutput:
    def __init__(self, app: faust.App, outside: Sink, *, max_message_bytes: int,
                 on_sent: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self._app = app
        self._outside = outside
        self._max_message_bytes = max_message_bytes
        self._on_sent = on_sent
        self._source: ContextVar[tuple[str, int] | None] = ContextVar("output_source", default=None)
        self._pending: list[_Pending] = []
        self._failed: BaseException | None = None

    @contextmanager
    def source(self, topic: str, partition: int) -> Iterator[None]:
        """Within: what is sent derives from records of `topic`[`partition`]."""
        token = self._source.set((topic, partition))
        try:
            yield
        finally:
            self._source.reset(token)

    def send(self, topic: str, key: bytes | None, value: bytes | None,
             headers: Headers | None = None, partition: int | None = None) -> None:  # fmt: skip
        source = self._source.get()
        if source is None:
            self._outside.send(topic, key, value, headers, partition)
            return
        encoded = [(name, v.encode() if isinstance(v, str) else v or b"")
                   for name, v in headers or []]  # fmt: skip
        self._pending.append(_Pending(self._transactional_id(*source), topic, key, value,
                                      encoded, partition))  # fmt: skip
        if self._on_sent is not None:
            self._on_sent(topic)

    def send_dead_letter(self, topic: str, letter: DeadLetter) -> None:
        fitted = fit(letter, self._max_message_bytes)
        self.send(topic, fitted.key, fitted.value, fitted.headers())

    async def delivered(self) -> None:
        """Sends what is buffered, each in its source's transaction, and waits for the broker;
        once one failed, every later call fails (no transaction may commit after it). What
        belongs to a transaction this worker no longer has is dropped: its partition was
        revoked, and its records, uncommitted, are read again by the new owner."""
        if self._failed is not None:
            raise OutputDeliveryError(f"an output was not delivered: {self._failed!r}")
        pending, self._pending = self._pending, []
        producer: Any = self._app.producer
        try:
            futures = []
            for item in pending:
                if not has_transaction(self._app, item.transactional_id):
                    log.info("dropped an output of revoked %s", item.transactional_id)
                    continue
                futures.append(await producer.send(
                    item.topic, item.key, item.value, item.partition, None, item.headers,
                    transactional_id=item.transactional_id))  # fmt: skip
            await asyncio.gather(*futures)
        except Exception as exc:
            self._failed = exc
            raise OutputDeliveryError(f"an output was not delivered: {exc!r}") from exc
        await self._outside.delivered()

    def pending(self) -> bool:
        """Whether outputs wait in the buffer (sent at the next wait or commit)."""
        return bool(self._pending)

    def discard(self) -> None:
        """Drops what is buffered (a rebalance: the records are read again, and their open
        transactions are aborted when the next owner of their ids starts)."""
        self._pending.clear()

    def _transactional_id(self, topic: str, partition: int) -> str:
        # Faust's TransactionManager.transactional_id_format, for the source partition.
        group = self._app.assignor.group_for_topic(topic)
        return f"{self._app.conf.id}-{group}-{partition}"
