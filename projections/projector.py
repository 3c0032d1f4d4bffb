"""The projector: a consumer group member that folds a source's records into a read-model store.

Where it resumes is read from the store (the offsets each generation applied), not from the
group's committed offsets, so a crash between the store write and the Kafka commit, a rebalance or
a rebuild's generation switch never skips an event, and the store's offset guard makes every
replayed event a no-op. Offsets are still committed after each batch, for lag monitoring.

When the store is down (or refuses for a while: out of memory, read-only), the projector pauses
its partitions (staying in the group), retries with growing back-off, and resumes where the store
says it is. A store that lost writes (restarted from an older snapshot, failed over) refuses the
next batch (`StoreBehindError`): the projector repositions from what it does hold, so the lost
records are applied again, never taken for duplicates.

Every event passes the same contract as in the processors (`processors.validation.violation`,
with the Kafka record's timestamp for the future-skew check); one that breaks it is counted
(`jobtrail_projection_rejected_total{projection,reason}`) and skipped: its position is recorded as
applied, nothing else changes. The processors dead-letter the same records.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

import structlog
from confluent_kafka import Consumer, Message, TopicPartition

from projections.metrics import ProjectorMetrics
from projections.model import Position
from projections.ports import (
    BatchResult,
    PendingBatch,
    ProjectionStore,
    StaleGenerationError,
    StoreBehindError,
    StoreFaultError,
    StoreUnavailableError,
)
from projections.settings import ProjectorSettings
from projections.sources import Decoded, JobEventSource, RecordSource
from streams.consumer import next_offsets
from streams.kafka_config import consumer_config
from streams.metadata import fetch_metadata
from streams.settings import KafkaSettings

log = structlog.get_logger("jobtrail.projector")
T = TypeVar("T")
R = TypeVar("R")


class _Failed:
    """A batch the store refused at once: settling it goes through the path of its error."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    def result(self) -> BatchResult:
        raise self._error


@dataclass(slots=True)
class _InFlight(Generic[R]):
    pending: PendingBatch
    messages: list[Message]
    decoded: Decoded[R]
    started: float = field(default_factory=time.perf_counter)


@dataclass(slots=True)
class ProjectorStats:
    batches: int = 0
    applied: int = 0
    duplicates: int = 0
    undecodable: int = 0
    rejected: int = 0  # events that break the contract, skipped
    store_errors: int = 0
    store_faults: int = 0  # error replies a wait alone does not fix (also in store_errors)
    repositions: int = 0
    behind: int = 0  # batches the store refused because it lost writes
    first_consumed_at: float = 0.0  # monotonic: when the first records arrived
    last_applied_at: float = 0.0  # monotonic: when the last batch was applied

    @property
    def events_per_s(self) -> float:
        busy = self.last_applied_at - self.first_consumed_at
        return self.applied / busy if busy > 0 else 0.0


class Projector(Generic[R]):
    """Feeds `store` from `source`'s topics (default: job-events, for the job read model)."""

    def __init__(
        self,
        store: ProjectionStore[R],
        kafka: KafkaSettings | None = None,
        settings: ProjectorSettings | None = None,
        *,
        metrics: ProjectorMetrics | None = None,
        source: RecordSource[R] | None = None,
    ) -> None:
        self.store = store
        self.kafka = kafka or KafkaSettings()
        self.settings = settings or ProjectorSettings()
        self.metrics = None if metrics is None else metrics.zeroed(store.name)
        # Without a source the store is a job read model (the type checker cannot tie the
        # default to R, hence the cast).
        self.source = source or cast(RecordSource[R], JobEventSource(self.kafka))
        # One group per projection and topic prefix: two deployments never share members.
        self.group_id = f"{self.kafka.topic_prefix}projection-{store.name}"
        self.stopping = threading.Event()
        self.stats = ProjectorStats()
        self._consumer: Consumer | None = None
        self._generation = 0
        self._assignment: list[TopicPartition] = []
        self._in_flight: _InFlight[R] | None = None
        # Per source, the offset the consumer was last positioned at from the store's offsets,
        # until its first batch after that: see `_log_starts`.
        self._resumed_at: dict[str, int] = {}
        self._failed_batches = 0  # in a row: the back-off grows while the store keeps refusing

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Projector[R]:
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
        fetch_metadata(consumer, self.kafka, required=self.source.topics)
        consumer.subscribe(self.source.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
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
                decoded = self.source.decode(messages)
                settled = self._settle()
                last_record = time.monotonic()  # a store outage waited out is not idleness
                if not settled:
                    continue  # repositioned from the store: these records will come again
                log_starts = self._log_starts(decoded.items)
                try:
                    pending = self.store.submit_batch(
                        decoded.items, self._generation, log_starts=log_starts
                    )
                except (StoreUnavailableError, StoreBehindError, StaleGenerationError) as exc:
                    pending = _Failed(exc)
                self._in_flight = _InFlight(pending, messages, decoded)
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
            self._reposition(self._assignment, "generation")
            return False
        except StoreBehindError as exc:
            # The store lost writes: what it lacks is applied again from where it stands.
            self.stats.behind += 1
            gap = exc.gap
            log.warning("store behind the projector, repositioning", store=self.store.name,
                        source=gap.source, recorded=gap.recorded, first=gap.first)  # fmt: skip
            self._reposition(self._assignment, "behind")
            return False
        except StoreUnavailableError as exc:
            self._failed_batches += 1
            self._wait_for_store(exc)
            self._reposition(self._assignment, "outage")
            return False
        self._failed_batches = 0
        self._record(result, in_flight.decoded, in_flight.started)
        self._require_consumer().commit(offsets=next_offsets(in_flight.messages), asynchronous=True)
        return True

    def _log_starts(self, items: Sequence[tuple[Position, R | None]]) -> dict[str, int]:
        """Where the log holds nothing the store lacks, per source of the batch: for the first
        batch after the consumer was positioned at the store's offset + 1, the batch's first
        offset (the consumer returns the first record at or after that position, so nothing lies
        in between: retention deleted the head, or the log has a hole there). Elsewhere nothing:
        a batch must then follow the store's offset exactly."""
        starts: dict[str, int] = {}
        for position, _ in items:
            resumed = self._resumed_at.pop(position.source, None)
            if resumed is not None and position.offset >= resumed:
                starts[position.source] = position.offset
        return starts

    def _wait_for_store(self, error: StoreUnavailableError) -> None:
        """Backs off, partitions paused (still in the group), until the store answers again.
        The back-off keeps growing while batches keep failing (a store that answers reads but
        refuses writes: out of memory, read-only)."""
        backoff = min(0.1 * 2 ** min(self._failed_batches - 1, 16), self.settings.retry_max_s)
        while not self.stopping.is_set():
            self._count_store_error(error, backoff)
            self._wait_paused(backoff)
            backoff = min(backoff * 2, self.settings.retry_max_s)
            try:
                self.store.applied_offsets(self._generation)
                return
            except StoreUnavailableError as again:
                error = again

    def _count_store_error(self, error: StoreUnavailableError, backoff: float) -> None:
        self.stats.store_errors += 1
        if self.metrics:
            self.metrics.store_errors.labels(self.store.name).inc()
        if isinstance(error, StoreFaultError):
            # Not transient: retrying keeps the batch (skipping it would lose it), but only an
            # operator can fix this, so say it loudly, every time.
            self.stats.store_faults += 1
            if self.metrics:
                self.metrics.store_faults.labels(self.store.name).inc()
            log.error("store refuses the batch, retrying; fix the store or the script",
                      store=self.store.name, error=str(error), retry_in_s=backoff)  # fmt: skip
        else:
            log.warning("store unavailable, retrying", store=self.store.name, error=str(error),
                        retry_in_s=backoff)  # fmt: skip

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

    def _record(self, result: BatchResult, decoded: Decoded[R], started: float) -> None:
        self.stats.batches += 1
        self.stats.last_applied_at = time.monotonic()
        self.stats.undecodable += decoded.undecodable
        self.stats.rejected += decoded.rejected.total()
        self.stats.applied += result.applied
        self.stats.duplicates += result.duplicates
        if self.metrics is None:
            return
        name = self.store.name
        self.metrics.applied.labels(name).inc(result.applied)
        self.metrics.duplicates.labels(name).inc(result.duplicates)
        self.metrics.undecodable.labels(name).inc(decoded.undecodable)
        for reason, events in decoded.rejected.items():
            self.metrics.rejected.labels(name, reason).inc(events)
        self.metrics.apply_seconds.labels(name).observe(time.perf_counter() - started)
        self.metrics.batch_size.labels(name).observe(len(decoded.items))
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
        for tp in partitions:
            self._resumed_at.pop(f"{tp.topic}:{tp.partition}", None)
        self._settle()

    def _reposition(self, partitions: list[TopicPartition], cause: str) -> None:
        self.stats.repositions += 1
        if self.metrics:
            self.metrics.repositions.labels(self.store.name, cause).inc()
        consumer = self._require_consumer()
        self._positions_from_store(partitions)
        for tp in partitions:
            consumer.seek(tp)

    def _positions_from_store(self, partitions: list[TopicPartition]) -> None:
        applied = self._until_store_answers(lambda: self.store.applied_offsets(self._generation))
        for tp in partitions:
            source = f"{tp.topic}:{tp.partition}"
            tp.offset = applied.get(source, -1) + 1
            self._resumed_at[source] = tp.offset

    def _until_store_answers(self, call: Callable[[], T]) -> T:
        backoff = 0.1
        while True:
            try:
                return call()
            except StoreUnavailableError as exc:
                if self.stopping.is_set():
                    raise
                self._count_store_error(exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, self.settings.retry_max_s)

    def _gauge_generation(self) -> None:
        if self.metrics:
            self.metrics.generation.labels(self.store.name).set(self._generation)

    def _require_consumer(self) -> Consumer:
        if self._consumer is None:
            raise RuntimeError("Projector.start() was not called")
        return self._consumer
