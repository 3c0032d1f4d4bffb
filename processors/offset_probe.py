"""Asks the broker what lies in a gap of offsets: the first record a consumer would be handed at
or after an offset.

Offsets are not all records. A transaction's commit or abort marker takes an offset, and under
`read_committed` an aborted transaction's records are skipped too, so two records handed out one
after the other can be several offsets apart with nothing lost between them. A job system may
write job-events in transactions, and under exactly_once the processors write their internal
topics, outputs and tables' changelogs in them. The offset guard
(`processors.faust_workarounds.OffsetGuard`) must tell such a gap from records Faust dropped,
which are readable and must be read again: it asks here.

One librdkafka consumer, no group, assigned to the partition in question for each question;
questions are rare (a gap, a short tail the fetcher read past, a worker about to stop itself), so
they run one at a time on a thread of their own: never on the event loop, and never on the
default executor, where the outputs' flushes run (a slow broker answer queueing there would hold
up every flush, and with it every commit).
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streams.kafka_config import consumer_config
from streams.settings import KafkaSettings

PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Readable:
    """What a consumer reading from an offset meets first: the record at `offset`, or, with
    `end`, the partition's end at `offset` (nothing readable before it)."""

    offset: int
    end: bool = False


class ProbeTimeoutError(Exception):
    """The broker did not answer in time: the caller treats the gap as unexplained."""


class OffsetProbe:
    def __init__(self, kafka: KafkaSettings, group_id: str, *, read_committed: bool) -> None:
        self._config = consumer_config(
            kafka, group_id,
            **{"isolation.level": "read_committed" if read_committed else "read_uncommitted",
               "enable.partition.eof": True,
               "fetch.wait.max.ms": 10})  # fmt: skip
        self._consumer: Consumer | None = None
        self._ends: Consumer | None = None
        self._lock = threading.Lock()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="offset-probe")

    def first_readable(self, topic: str, partition: int, offset: int,
                       timeout_s: float = PROBE_TIMEOUT_S) -> Readable:  # fmt: skip
        """The first record handed out at or after `offset`, or the partition's end when there
        is none before it (read_committed: the last stable offset; an open transaction's
        records lie past it)."""
        with self._lock:
            consumer = self._require()
            consumer.assign([TopicPartition(topic, partition, offset)])
            try:
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline:
                    message = consumer.poll(0.2)
                    if message is None:
                        continue
                    error, at = message.error(), message.offset()
                    if error is None and at is not None:
                        return Readable(at)
                    if error is not None and error.code() == KafkaError._PARTITION_EOF:
                        return Readable(offset if at is None else at, end=True)
                    if error is None:
                        continue
                    if error.fatal() or not error.retriable():
                        raise KafkaException(error)
                raise ProbeTimeoutError(f"{topic}[{partition}]@{offset}: no answer in {timeout_s}s")
            finally:
                consumer.unassign()

    def high_watermark(self, topic: str, partition: int) -> int:
        """The partition's end now, asked of the broker (a consumer's own copy is as old as its
        last fetch); under read_committed it counts open transactions' records too."""
        with self._lock:
            if self._ends is None:
                # Asked reading committed records, the broker answers the last stable offset.
                self._ends = Consumer({**self._config, "isolation.level": "read_uncommitted"})
            tp = TopicPartition(topic, partition)
            _, high = self._ends.get_watermark_offsets(tp, timeout=PROBE_TIMEOUT_S, cached=False)
            return int(high)

    async def caught_up_async(self, topic: str, partition: int, offset: int) -> bool:
        """Whether nothing is left to read from `offset` on, and nothing is on its way in an
        open transaction (its records would lie between the last stable offset and the end)."""
        loop = asyncio.get_running_loop()
        readable = await loop.run_in_executor(
            self._thread, self.first_readable, topic, partition, offset
        )
        if not readable.end:
            return False
        return readable.offset >= await loop.run_in_executor(
            self._thread, self.high_watermark, topic, partition
        )

    async def first_readable_async(self, topic: str, partition: int, offset: int) -> Readable:
        return await asyncio.get_running_loop().run_in_executor(
            self._thread, self.first_readable, topic, partition, offset
        )

    def close(self) -> None:
        with self._lock:
            for consumer in (self._consumer, self._ends):
                if consumer is not None:
                    consumer.close()
            self._consumer = self._ends = None

    def _require(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(self._config)
        return self._consumer
