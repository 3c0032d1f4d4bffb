"""The projector: a consumer group member that folds job events into a read-model store.

Where it resumes is read from the store (the offsets each generation applied), not from the
group's committed offsets, so a crash between the store write and the Kafka commit, a rebalance or
a rebuild's generation switch never skips an event, and the store's offset guard makes every
replayed event a no-op. Offsets are still committed after each batch, for lag monitoring.

When the store is down, the projector pauses its partitions (staying in the group), retries with
growing back-off, and resumes where the store says it is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import structlog
from confluent_kafka import Consumer, Message, TopicPartition

from jobtrail.errors import SchemaError
from projections.metrics import ProjectorMetrics
from projections.model import Position
from projections.ports import (
    BatchResult,
    Item,
    PendingBatch,
    ProjectionStore,
    StaleGenerationError,
    StoreUnavailableError,
)
from projections.settings import ProjectorSettings
from schemas.codec import JobEventCodec, create_codec
from streams.consumer import next_offsets
from streams.kafka_config import consumer_config
from streams.metadata import fetch_metadata
from streams.settings import KafkaSettings
from streams.topics import topic_catalog

log = structlog.get_logger("jobtrail.projector")
T = TypeVar("T")


def decode_items(messages: Sequence[Message], codec: JobEventCodec) -> tuple[list[Item], int]:
    """Log records as store items; undecodable ones become position-only items (the processors'
    DLQ reports them; the projection just moves past). Returns the items and how many failed."""
    items: list[Item] = []
    failed = 0
    for message in messages:
        topic = message.topic() or ""
        position = Position(topic, message.partition() or 0, message.offset() or 0)
        try:
            items.append((position, codec.decode(message.value() or b"", topic)))
        except SchemaError:
            items.append((position, None))
            failed += 1
    return items, failed


class _Failed:
    """A batch the store refused at once: settling it goes through the outage path."""

    def __init__(self, error: StoreUnavailableError) -> None:
        self._error = error

    def result(self) -> BatchResult:
        raise self._error


@dataclass(slots=True)
class _InFlight:
    pending: PendingBatch
    messages: list[Message]
    size: int
    failed: int
    started: float = field(default_factory=time.perf_counter)


@dataclass(slots=True)
class ProjectorStats:
    batches: int = 0
    applied: int = 0
    duplicates: int = 0
    undecodable: int = 0
    store_errors: int = 0
    repositions: int = 0
    first_consumed_at: float = 0.0  # monotonic: when the first records arrived
    last_applied_at: float = 0.0  # monotonic: when the last batch was applied

    @property
    def events_per_s(self) -> float:
        busy = self.last_applied_at - self.first_consumed_at
        return self.applied / busy if busy > 0 else 0.0


class Projector:
    def __init__(
        self,
        store: ProjectionStore,
        kafka: KafkaSettings | None = None,
        settings: ProjectorSettings | None = None,
        *,
        metrics: ProjectorMetrics | None = None,
    ) -> None:
        self.store = store
        self.kafka = kafka or KafkaSettings()
        self.settings = settings or ProjectorSettings()
        self.metrics = metrics
        self.topic = topic_catalog(self.kafka.topic_prefix).job_events.name
        # One group per projection and topic prefix: two deployments never share members.
        self.group_id = f"{self.kafka.topic_prefix}projection-{store.name}"
        self.codec = create_codec(self.kafka.schema_registry_url)
        self.stopping = threading.Event()
        self.stats = ProjectorStats()
        self._consumer: Consumer | None = None
        self._generation = 0
        self._assignment: list[TopicPartition] = []
        self._in_flight: _InFlight | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Projector:
        self.store.setup()
        self._generation = self._until_store_answers(self.store.current_generation)
        consumer = Consumer(
            consumer_config(
                self.kafka,
                self.group_id,
                # A crashed member holds its partitions until this passes: keep it short.
                **{"session.timeout.ms": self.settings.session_timeout_ms},
            )
        )
        fetch_metadata(consumer, self.kafka, required=[self.topic])
        consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._consumer = consumer
        self._gauge_generation()
        return self

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def run(self, *, idle_stop_s: float | None = None) -> ProjectorStats:
        """Projects until `stopping` is set, or until no record came for `idle_stop_s`.

        Pipelined: while the store applies one batch (`submit_batch` returns before the store
        has answered), the next one is consumed and decoded.
        """
        consumer = self._require_consumer()
        last_record = time.monotonic()
        try:
            while not self.stopping.is_set():
                batch = consumer.consume(self.settings.batch_size, self.settings.batch_wait_s)
                messages = [m for m in batch if m.error() is None]
                if not messages:
                    self._settle()  # never hold an applied-but-uncommitted batch while idle
                    if not self._assignment:
                        last_record = time.monotonic()  # joining the group is not being idle
                    elif idle_stop_s is not None and time.monotonic() - last_record > idle_stop_s:
                        break
                    continue
                if not self.stats.first_consumed_at:
                    self.stats.first_consumed_at = time.monotonic()
                items, failed = decode_items(messages, self.codec)
                settled = self._settle()
                last_record = time.monotonic()  # a store outage waited out is not idleness
                if not settled:
                    continue  # repositioned from the store: these records will come again
                try:
                    pending = self.store.submit_batch(items, self._generation)
                except StoreUnavailableError as exc:
                    pending = _Failed(exc)
                self._in_flight = _InFlight(pending, messages, len(items), failed)
        finally:
            self._settle()
        return self.stats

    # -- one batch -------------------------------------------------------------------------------

    def _settle(self) -> bool:
        """Waits for the batch in flight; commits it, or repositions from the store when it
        failed. True when the projector can go on from where it consumed."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is None:
            return True
        try:
            result = in_flight.pending.result()
        except StaleGenerationError:
            # A rebuild switched readers to a new generation: continue from where it stands.
            self._generation = self._until_store_answers(self.store.current_generation)
            self._gauge_generation()
            self._reposition(self._assignment)
            self.stats.repositions += 1
            return False
        except StoreUnavailableError as exc:
            self._wait_for_store(exc)
            self._reposition(self._assignment)
            self.stats.repositions += 1
            return False
        self._record(result.applied, result.duplicates, in_flight.size, in_flight.failed,
                     in_flight.started)  # fmt: skip
        self._require_consumer().commit(offsets=next_offsets(in_flight.messages), asynchronous=True)
        return True

    def _wait_for_store(self, error: StoreUnavailableError) -> None:
        """Backs off, partitions paused (still in the group), until the store answers again."""
        backoff = 0.1
        while not self.stopping.is_set():
            self.stats.store_errors += 1
            if self.metrics:
                self.metrics.store_errors.labels(self.store.name).inc()
            log.warning("store unavailable, retrying", store=self.store.name, error=str(error),
                        retry_in_s=backoff)  # fmt: skip
            self._wait_paused(backoff)
            backoff = min(backoff * 2, self.settings.retry_max_s)
            try:
                self.store.applied_offsets(self._generation)
                return
            except StoreUnavailableError as again:
                error = again

    def _wait_paused(self, seconds: float) -> None:
        """Waits without consuming, still serving group membership and rebalance callbacks."""
        consumer = self._require_consumer()
        paused = list(self._assignment)
        consumer.pause(paused)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stopping.is_set():
            consumer.consume(1, min(0.2, max(deadline - time.monotonic(), 0.01)))
        if self._assignment == paused:
            consumer.resume(paused)

    def _record(
        self, applied: int, duplicates: int, size: int, failed: int, started: float
    ) -> None:
        self.stats.batches += 1
        self.stats.last_applied_at = time.monotonic()
        self.stats.undecodable += failed
        self.stats.applied += applied
        self.stats.duplicates += duplicates
        if self.metrics is None:
            return
        name = self.store.name
        self.metrics.applied.labels(name).inc(applied)
        self.metrics.duplicates.labels(name).inc(duplicates)
        self.metrics.undecodable.labels(name).inc(failed)
        self.metrics.apply_seconds.labels(name).observe(time.perf_counter() - started)
        self.metrics.batch_size.labels(name).observe(size)
        if self.stats.batches % 20 == 1:
            self.metrics.lag.labels(name).set(self.lag())

    def lag(self) -> int:
        consumer = self._require_consumer()
        total = 0
        for tp in consumer.position(self._assignment):
            _, high = consumer.get_watermark_offsets(tp, cached=True)
            if tp.offset >= 0 and high >= 0:
                total += max(high - tp.offset, 0)
        return total

    # -- positions -------------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._positions_from_store(partitions)
        consumer.assign(partitions)
        self._assignment = list(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Finish the batch in flight first: once revoked, another member may write these
        # partitions, and the single-writer guarantee of the offset guard must hold. With the
        # assignment already cleared, a failed batch repositions nothing: the next owner resumes
        # from the store's offsets anyway.
        self._assignment = []
        self._settle()

    def _reposition(self, partitions: list[TopicPartition]) -> None:
        consumer = self._require_consumer()
        self._positions_from_store(partitions)
        for tp in partitions:
            consumer.seek(tp)

    def _positions_from_store(self, partitions: list[TopicPartition]) -> None:
        applied = self._until_store_answers(lambda: self.store.applied_offsets(self._generation))
        for tp in partitions:
            tp.offset = applied.get(f"{tp.topic}:{tp.partition}", -1) + 1

    def _until_store_answers(self, call: Callable[[], T]) -> T:
        backoff = 0.1
        while True:
            try:
                return call()
            except StoreUnavailableError as exc:
                if self.stopping.is_set():
                    raise
                log.warning("store unavailable", store=self.store.name, error=str(exc))
                time.sleep(backoff)
                backoff = min(backoff * 2, self.settings.retry_max_s)

    def _gauge_generation(self) -> None:
        if self.metrics:
            self.metrics.generation.labels(self.store.name).set(self._generation)

    def _require_consumer(self) -> Consumer:
        if self._consumer is None:
            raise RuntimeError("Projector.start() was not called")
        return self._consumer
