"""Batch consumption with commit after the effect.

`BatchConsumer.run(handle)` polls a batch, hands it to `handle`, and commits the batch's offsets
only when `handle` returned, i.e. when its effects are durable. If `handle` raises, the consumer
rewinds to the start of the batch, so the same records come again (at-least-once): effects must
be idempotent, which every jobtrail projection is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from jobtrail.errors import JobtrailError, KafkaUnavailableError
from streams.kafka_config import consumer_config
from streams.metadata import fetch_metadata
from streams.settings import KafkaSettings

BatchHandler = Callable[[list[Message]], None]


class ConsumerError(JobtrailError):
    """The broker reported an error for this consumer that librdkafka will not recover from."""


def next_offsets(messages: Sequence[Message]) -> list[TopicPartition]:
    """The offsets to commit after `messages`: per partition, one past the highest offset."""
    highest: dict[tuple[str, int], int] = {}
    for message in messages:
        tp = (message.topic() or "", message.partition() or 0)
        offset = message.offset() or 0
        if offset >= highest.get(tp, -1):
            highest[tp] = offset
    return [TopicPartition(t, p, o + 1) for (t, p), o in sorted(highest.items())]


def first_offsets(messages: Sequence[Message]) -> list[TopicPartition]:
    """Per partition, the lowest offset in `messages`: where to rewind to redo the batch."""
    lowest: dict[tuple[str, int], int] = {}
    for message in messages:
        tp = (message.topic() or "", message.partition() or 0)
        offset = message.offset() or 0
        if offset < lowest.get(tp, offset + 1):
            lowest[tp] = offset
    return [TopicPartition(t, p, o) for (t, p), o in sorted(lowest.items())]


class BatchConsumer:
    """A consumer-group member that processes records in batches and commits after effects."""

    def __init__(
        self,
        kafka: KafkaSettings,
        group_id: str,
        topics: Sequence[str],
        *,
        batch_size: int = 1000,
        batch_wait_s: float = 0.5,
        **config_overrides: Any,
    ) -> None:
        self._kafka = kafka
        self._config = consumer_config(kafka, group_id, **config_overrides)
        self.topics = list(topics)
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self._consumer: Consumer | None = None
        self.stopping = threading.Event()

    def start(self) -> BatchConsumer:
        consumer = Consumer(self._config)
        try:
            fetch_metadata(consumer, self._kafka, required=self.topics)
        except KafkaUnavailableError:
            consumer.close()
            raise
        consumer.subscribe(self.topics)
        self._consumer = consumer
        return self

    @property
    def consumer(self) -> Consumer:
        if self._consumer is None:
            raise RuntimeError("BatchConsumer is not started")
        return self._consumer

    def poll_batch(self) -> list[Message]:
        """Up to `batch_size` records, waiting at most `batch_wait_s`; raises fatal errors."""
        messages = self.consumer.consume(self.batch_size, self.batch_wait_s)
        good: list[Message] = []
        for message in messages:
            error = message.error()
            if error is None:
                good.append(message)
            elif error.fatal() or error.code() in _FATAL_CODES:
                raise ConsumerError(f"consumer error: {error.str()}")
            # Other errors (partition EOF, transient transport) are informational here.
        return good

    def commit(self, messages: Sequence[Message]) -> None:
        if messages:
            self.consumer.commit(offsets=next_offsets(messages), asynchronous=False)

    def rewind(self, messages: Sequence[Message]) -> None:
        for tp in first_offsets(messages):
            self.consumer.seek(tp)

    def run(
        self,
        handle: BatchHandler,
        *,
        idle_stop_s: float | None = None,
        on_error: Callable[[BaseException], float] | None = None,
    ) -> None:
        """Consumes until `stopping` is set (or no record came for `idle_stop_s` seconds).

        When `handle` raises: rewind, then ask `on_error` how long to back off before trying
        again; without `on_error`, the error propagates (offsets stay uncommitted).
        """
        idle_since = time.monotonic()
        while not self.stopping.is_set():
            batch = self.poll_batch()
            if not batch:
                if idle_stop_s is not None and time.monotonic() - idle_since > idle_stop_s:
                    return
                continue
            try:
                handle(batch)
            except Exception as exc:
                self.rewind(batch)
                if on_error is None:
                    raise
                self.stopping.wait(on_error(exc))
            else:
                self.commit(batch)
            # Idle counts from when the last batch was done: a batch slower than idle_stop_s
            # (a slow provider, a back-off) is not a quiet topic.
            idle_since = time.monotonic()

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


_FATAL_CODES = {
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
}
