"""Staying in the consumer group while a provider call (or a back-off) takes longer than
max.poll.interval.ms.

librdkafka counts a member that has not polled for max.poll.interval.ms as dead: it leaves the
group, its partitions go to another member, and the commit that follows the slow call fails. The
embedder's provider may legitimately take that long (the OpenAI client's retries honour
Retry-After; an outage is waited out). So the slow part runs in a worker thread while the
consumer thread keeps polling with every assigned partition paused: polls that fetch nothing but
keep the member alive and serve rebalances. Should a commit fail anyway (the member was fenced
after all, or a rebalance took the partitions), `GroupCommitConsumer` says so and moves on: the
records come again to whoever owns the partition, and the fingerprint+model key of the compacted
error-vectors topic (and the embedder's known set) keeps that from making a second vector.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message

from streams.consumer import BatchConsumer, first_offsets

T = TypeVar("T")
log = structlog.get_logger("jobtrail.embedder")

# What a commit answers when this member no longer owns the batch's partitions: nothing to fix
# here, the group's next owner consumes the records again.
LOST_MEMBERSHIP = frozenset(
    {
        KafkaError._MAX_POLL_EXCEEDED,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError._ASSIGNMENT_LOST,
        KafkaError._STATE,
        KafkaError.FENCED_INSTANCE_ID,
    }
)


def lost_membership(error: KafkaException) -> bool:
    kafka_error = error.args[0] if error.args else None
    return isinstance(kafka_error, KafkaError) and kafka_error.code() in LOST_MEMBERSHIP


class GroupCommitConsumer(BatchConsumer):
    """A BatchConsumer whose commit survives having been fenced from the group."""

    lost_commits = 0

    def commit(self, messages: Sequence[Message]) -> None:
        try:
            super().commit(messages)
        except KafkaException as exc:
            if not lost_membership(exc):
                raise
            self.lost_commits += 1
            log.warning("commit_after_losing_partitions", error=str(exc.args[0]),
                        records=len(messages))  # fmt: skip


class KeepAlive:
    """Runs slow work off the consumer thread, polling (paused) every `poll_s` meanwhile."""

    def __init__(self, consumer: Callable[[], Consumer], poll_s: float = 1.0) -> None:
        self._consumer = consumer
        self.poll_s = poll_s
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="embed-call")
        self.keepalive_polls = 0

    def call(self, work: Callable[[], T]) -> T:
        future: Future[T] = self._pool.submit(work)
        try:
            return future.result(timeout=self.poll_s)  # the common case: no pausing at all
        except FutureTimeout:
            pass
        with self._paused():
            while True:
                try:
                    return future.result(timeout=self.poll_s)
                except FutureTimeout:
                    self._poll()

    def sleep(self, seconds: float, stopping: threading.Event) -> None:
        """Waits `seconds` (or until `stopping` is set) without leaving the group."""
        deadline = time.monotonic() + seconds
        with self._paused():
            while (left := deadline - time.monotonic()) > 0 and not stopping.is_set():
                self._poll(min(left, self.poll_s))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _paused(self) -> _Paused:
        return _Paused(self._consumer())

    def _poll(self, timeout: float = 0.0) -> None:
        consumer = self._consumer()
        consumer.pause(consumer.assignment())  # partitions a rebalance just gave us, too
        messages = [m for m in consumer.consume(100, timeout) if m.error() is None]
        self.keepalive_polls += 1
        for tp in first_offsets(messages):  # fetched before the pause: they must come again
            consumer.seek(tp)


class _Paused:
    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    def __enter__(self) -> None:
        self._consumer.pause(self._consumer.assignment())

    def __exit__(self, *_: object) -> None:
        self._consumer.resume(self._consumer.assignment())
