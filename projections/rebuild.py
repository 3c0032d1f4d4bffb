"""Rebuild a projection by replaying its topics from the start into a fresh generation.

The live projector keeps running meanwhile, writing the current generation. When the rebuild has
caught up with the end of the log it switches readers to the new generation in one step; the live
projector's next batch finds its generation stale, re-reads where the new generation stands, and
carries on from there. The old generation is then dropped.

Surviving failures:
- A store error that retrying can help (`StoreUnavailableError`, `StoreBehindError`, a registry
  outage while decoding) restarts the replay from the offsets the store recorded for the new
  generation, with exponential back-off, until `outage_s` pass without progress. Those offsets,
  not what this process read, say where to go on: a store that lost writes is replayed again
  from where it stands.
- The rebuild records itself in the store (`rebuild_ledger`) before it writes a batch. A rebuild
  killed at any point (kill -9 included) leaves that marker; the next rebuild resumes the orphaned
  generation from its recorded offsets (or, with `resume=False`, drops it and starts afresh), and
  drops generations no rebuild owns. A marker whose owner is still alive refuses a second rebuild.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

from jobtrail.errors import JobtrailError
from projections.ports import PendingBatch, ProjectionStore
from projections.rebuild_ledger import (
    RebuildLedger,
    RebuildMarker,
    ledger_for,
    now,
    owner_alive,
    this_owner,
)
from projections.sources import JobEventSource, RecordSource
from streams.kafka_config import consumer_config
from streams.metadata import fetch_metadata
from streams.settings import KafkaSettings

Progress = Callable[[int, int], None]  # (records in the new generation, records in the log now)
T = TypeVar("T")
log = structlog.get_logger("jobtrail.rebuild")


class RebuildInProgressError(JobtrailError):
    """Another rebuild of this store is running (its marker's owner is alive)."""


@dataclass(frozen=True, slots=True)
class RebuildReport:
    old_generation: int
    new_generation: int
    records: int  # applied by this run (a resumed run counts only its own)
    undecodable: int
    replay_seconds: float  # from the start until readers were switched
    seconds: float  # including dropping the old generation
    resumed: bool = False  # went on with an orphaned generation
    dropped_orphans: tuple[int, ...] = ()
    restarts: int = 0  # replays restarted from the store's offsets after a transient error


def _retryable(error: BaseException) -> bool:
    return isinstance(error, JobtrailError) and error.retryable


class _Patience:
    """Retries of transient store errors until `outage_s` pass without progress."""

    def __init__(self, outage_s: float) -> None:
        self.outage_s = outage_s
        self.progressed_at = time.monotonic()

    def progressed(self) -> None:
        self.progressed_at = time.monotonic()

    def _stop(self, state: RetryCallState) -> bool:
        return time.monotonic() - self.progressed_at > self.outage_s

    def call(self, work: Callable[[], T]) -> T:
        retrying = Retrying(
            retry=retry_if_exception(_retryable),
            wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
            stop=self._stop,
            reraise=True,
            before_sleep=_log_retry,
        )
        return retrying(work)


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    log.warning("rebuild_retry", attempt=state.attempt_number, error=str(error),
                error_type=type(error).__name__)  # fmt: skip


@dataclass
class _Claim:
    old: int
    new: int
    resumed: bool
    marker: RebuildMarker
    dropped: list[int] = field(default_factory=list)


def _claim(
    store: ProjectionStore[Any], ledger: RebuildLedger, resume: bool, stale_s: float
) -> _Claim:
    """Which generation this rebuild fills: an orphan's (resumed), or a new one."""
    current = store.current_generation()
    marker = ledger.read()
    dropped: list[int] = []
    resumed = False
    if marker is not None:
        if marker.owner != this_owner() and owner_alive(marker, stale_after_s=stale_s, now=now()):
            raise RebuildInProgressError(
                f"{store.name}: generation {marker.generation} is being rebuilt by"
                f" {marker.owner} (started {time.ctime(marker.started_at)})"
            )
        if marker.generation == current:  # it switched readers, then died before the drop
            store.drop(marker.old_generation)
            dropped.append(marker.old_generation)
            marker = None
        elif resume:
            resumed = True
        else:
            store.drop(marker.generation)
            dropped.append(marker.generation)
            marker = None
    new = marker.generation if marker is not None else store.new_generation()
    started_at = marker.started_at if marker is not None else now()
    claimed = RebuildMarker(new, current, this_owner(), started_at, now())
    ledger.write(claimed)  # before the first batch: whatever happens next leaves a trace
    # Generations nobody reads or builds (left by a rebuild killed before markers existed, or
    # by an orphan just dropped in favour of a fresh one) hold only stale data.
    for generation in range(1, ledger.last_generation() + 1):
        if generation not in (current, new, *dropped) and store.applied_offsets(generation):
            store.drop(generation)
            dropped.append(generation)
    return _Claim(current, new, resumed, claimed, dropped)


@dataclass
class _Replay:
    store: ProjectionStore[Any]
    ledger: RebuildLedger
    source: RecordSource[Any]
    claim: _Claim
    batch_size: int
    heartbeat_s: float
    patience: _Patience
    on_progress: Progress | None
    kafka: KafkaSettings
    low: dict[tuple[str, int], int] = field(default_factory=dict)
    high: dict[tuple[str, int], int] = field(default_factory=dict)
    records: int = 0
    undecodable: int = 0
    attempts: int = 0
    _beat_at: float = 0.0

    def run(self) -> None:
        self.patience.call(self._replay_from_store)

    def _replay_from_store(self) -> None:
        """One attempt, with a consumer of its own (one re-assigned after an error may never
        fetch a partition again): from the offsets the store recorded to the end of the log."""
        self.attempts += 1
        # No group: a rebuild reads everything, commits nothing, never disturbs the live group.
        consumer = Consumer(consumer_config(self.kafka, f"jobtrail-rebuild-{uuid.uuid4()}"))
        try:
            self._replay_with(consumer)
        finally:
            consumer.close()

    def _replay_with(self, consumer: Consumer) -> None:
        topics = self.source.topics
        metadata = fetch_metadata(consumer, self.kafka, required=topics)
        # Before assign: once fetches are in flight, an uncached watermark query queues behind
        # them (about fetch.wait.max.ms each). The high marks are a floor for "caught up": the
        # cached ones are unknown until the first fetch answers.
        for topic in topics:
            for p in sorted(metadata.topics[topic].partitions):
                watermarks = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                self.low[(topic, p)], self.high[(topic, p)] = watermarks
        applied = self.store.applied_offsets(self.claim.new)
        starts = []
        for topic, p in sorted(self.low):
            recorded = applied.get(f"{topic}:{p}")
            starts.append(TopicPartition(topic, p, OFFSET_BEGINNING if recorded is None
                                         else recorded + 1))  # fmt: skip
        consumer.assign(starts)
        log_starts: Mapping[str, int] = {f"{t}:{p}": low for (t, p), low in self.low.items()}
        pending: tuple[PendingBatch, int, int] | None = None
        try:
            while True:
                batch = consumer.consume(self.batch_size, 0.5)
                messages = [m for m in batch if m.error() is None]
                if messages:
                    decoded = self.source.decode(messages)  # while the last batch applies
                    settling, pending = pending, None  # never waited for twice
                    self._settle(settling)
                    submitted = self.store.submit_batch(
                        decoded.items, self.claim.new, check_current=False, log_starts=log_starts
                    )
                    pending = (submitted, len(messages), decoded.skipped)
                elif pending is not None:
                    settling, pending = pending, None
                    self._settle(settling)
                total, remaining = _log_size(consumer, starts, self.low, self.high)
                if self.on_progress is not None:
                    self.on_progress(total - remaining, total)
                self._heartbeat()
                if not messages and remaining == 0 and pending is None:
                    return
        finally:
            if pending is not None:  # never leave a reply unread on a pooled connection
                with contextlib.suppress(Exception):
                    pending[0].result()

    def _settle(self, pending: tuple[PendingBatch, int, int] | None) -> None:
        if pending is None:
            return
        batch, records, failed = pending
        batch.result()
        self.records += records
        self.undecodable += failed
        self.patience.progressed()

    def _heartbeat(self) -> None:
        if time.monotonic() - self._beat_at >= self.heartbeat_s:
            marker = self.claim.marker
            self.ledger.write(RebuildMarker(marker.generation, marker.old_generation,
                                            marker.owner, marker.started_at, now()))  # fmt: skip
            self._beat_at = time.monotonic()


def rebuild(
    store: ProjectionStore[Any],
    kafka: KafkaSettings | None = None,
    *,
    source: RecordSource[Any] | None = None,
    batch_size: int = 5000,
    on_progress: Progress | None = None,
    drop_grace_s: float = 2.0,
    resume: bool = True,
    outage_s: float = 300.0,
    stale_after_s: float = 120.0,
    heartbeat_s: float = 10.0,
) -> RebuildReport:
    kafka = kafka or KafkaSettings()
    source = source or JobEventSource(kafka)
    patience = _Patience(outage_s)
    started = time.monotonic()
    patience.call(store.setup)
    ledger = ledger_for(store)
    claim = patience.call(lambda: _claim(store, ledger, resume, stale_after_s))
    replay = _Replay(store, ledger, source, claim, batch_size, heartbeat_s, patience,
                     on_progress, kafka)  # fmt: skip
    try:
        replay.run()
        patience.call(lambda: store.switch_to(claim.new))
        replayed = time.monotonic() - started
    except BaseException as exc:
        if not _retryable(exc):
            _abandon(store, ledger, claim.new)  # a bug or a bad setting: no half-built leftovers
        raise  # a store still down: the marker stays, the next rebuild resumes
    time.sleep(drop_grace_s)  # let in-flight batches written for the old generation land first
    patience.call(lambda: store.drop(claim.old))
    patience.call(ledger.clear)
    return RebuildReport(claim.old, claim.new, replay.records, replay.undecodable, replayed,
                         time.monotonic() - started, claim.resumed, tuple(claim.dropped),
                         max(replay.attempts - 1, 0))  # fmt: skip


def _abandon(store: ProjectionStore[Any], ledger: RebuildLedger, generation: int) -> None:
    try:
        store.drop(generation)
        ledger.clear()
    except JobtrailError:
        pass  # the marker stays: the next rebuild (or --status) finds the orphan


def _log_size(
    consumer: Consumer, partitions: list[TopicPartition], low: dict[tuple[str, int], int],
    high_floor: dict[tuple[str, int], int],
) -> tuple[int, int]:  # fmt: skip
    """(records in the assigned partitions, records not yet read)."""
    assigned = {(tp.topic, tp.partition): tp.offset for tp in partitions}
    total = remaining = 0
    for tp in consumer.position(partitions):
        key = (tp.topic, tp.partition)
        _, high = consumer.get_watermark_offsets(tp, cached=True)
        start = low[key]
        high = max(high, start, high_floor[key])
        total += high - start
        # Nothing consumed yet (a resumed partition may have nothing left): where it was put.
        position = tp.offset if tp.offset >= 0 else max(assigned[key], start)
        remaining += max(high - position, 0)
    return total, remaining
