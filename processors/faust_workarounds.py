"""Every place the processors work around faust-streaming (0.15), each with why and upstream's
issue. Nothing else in processors/ touches a Faust internal.

1. `ignore_gaps`: Faust counts offsets missing between two fetched records as a gap and commits
   past them as if acknowledged (meant for compacted topics and transaction markers). Records
   Faust itself dropped around a (re)start became such a gap too, and were committed
   unprocessed: Faust cannot tell the two apart. The guard (2.) asks the broker which it is.
   faust-streaming/faust#606 (wrong offset commit with gaps), #378.
2. `OffsetGuard`: around a (re)start or rebalance Faust can hand a stream records past ones it
   dropped from its queues (prefetched before the seek to the committed offset), and nothing
   fetches the dropped ones again. faust-streaming/faust#216, #221. The guard checks each batch
   is the next run of offsets of its partition and rewinds the partition when it is not. It
   also drops records of partitions no longer assigned: Faust clears the agents' queues on a
   revocation, but not a batch already taken from one. A skip at a partition's tail shows no
   later record to reveal it: `OffsetGuard.check_tail` rewinds a partition fetched past its
   next offset that has not moved for `TAIL_WAIT_S`. Not every gap is records dropped: a
   transaction's marker takes an offset too, and read_committed skips aborted records. The guard
   asks the broker what lies in a gap (`processors.offset_probe`) and takes a gap of nothing
   readable as the next run; likewise a tail of markers is caught up, not lag. Either way it
   hands the gap to Faust's own gap bookkeeping (the upstream `_add_gap` that 1. turns off for
   every other hole): Faust commits only a contiguous run of acknowledged offsets, and without
   it never commits past a marker.
3. `flush_outputs_before_commit`: the processors produce through librdkafka (`processors.output`),
   which Faust knows nothing of; its pre-commit flush must flush ours too, or a commit could pass
   a record whose output is still in a buffer. Under exactly_once Faust commits its transactions
   without any flush, not even of its own buffer, where table writes wait: a row written before
   the commit could land in the next transaction, after the offsets that say it is done. So the
   transaction commit is wrapped too, and flushes both.
4. `fetch_flags`: for the stall warning, which of Faust's private sets a partition is in.
5. `PartitionedTable`: a stage writes its rows after a whole batch, for the partition it names,
   outside any one event's iteration (Faust takes the partition from the event being iterated:
   the documented `partition_for_key` hook is overridden). Under at_least_once the changelog
   record goes through the processors' librdkafka producer, beside the row in Faust's store:
   Faust's own produce path costs ~45 µs of Python per record here, and rows are the bulk of
   what the processors write. Flushed before each commit like every output (3.); recovery is
   Faust's, from the same changelog, in the format its json serializer reads. Under
   exactly_once the rows go Faust's way, inside its transactions.
6. `commit_nothing_when_all_revoked`: Faust filters a commit's partitions again in its consumer
   thread for those revoked meanwhile (faust-streaming#94, #95), and when none is left it hands
   aiokafka an empty commit, which raises ValueError({}) and crashes the worker (seen with two
   workers in `make bench-processors`). Nothing to commit is now nothing done.
7. `commit_between_batches` (exactly_once): Faust commits from a timer and from its fetcher,
   whenever they run. A transaction committed while a batch is half done would commit what the
   batch has sent so far with the offsets from before it; after a crash the batch is read again
   and its outputs come twice. Faust has no notion of a batch, so its consumer's commit is
   wrapped to wait for the batches in flight and to hold new ones back until it is done
   (`CommitGate`). And `has_transaction`: Faust's producer sends in a named transaction (its
   public `send`), but whether that transaction is open (this worker owns its partition) is in a
   private map.
8. `complete_buffer_flush`: Faust's producer buffer (where table writes wait to be sent) returns
   from `flush` as soon as no message left it for 0.1 s, with messages still queued, and it never
   waits for the one its background task has taken and is still sending. Under exactly_once a row
   still in the buffer when its offsets' transaction commits goes into the next transaction: a
   kill -9 then aborts the row while its record stays committed, and the restarted worker lacks
   the row (an outcome without its start). faust-streaming/faust#273 (flush before commit) made
   the commit call `flush`; this makes `flush` mean it.
9. `recover_to_the_stable_end`: under exactly_once Faust's recovery takes each changelog's end
   from aiokafka's `last_stable_offset`, a value cached from fetch responses: None before the
   first fetch, which at a worker's start is always. Recovery then reads the changelog as empty
   (highwater -1, every table empty) and the worker carries on from committed offsets with no
   state: outcomes without their start times, vectorize requests repeated. The end is asked of
   the broker instead (`end_offsets`, the last stable offset under read_committed).
10. `start_over_from_the_commits` (exactly_once): at a rebalance Faust keeps each transaction
   open and each table as the worker left it. A batch the rebalance overtook has written rows and
   outputs that will be read again, and a transaction whose partition moved is aborted by its
   next owner while its rows stay in this worker's memory: a table ahead of what was committed
   takes an edge it counted in the aborted transaction for counted, and its outcome never comes
   (two workers under exactly_once lost a third of the outcomes). So at a revocation every open
   transaction is aborted and every table forgotten; recovery rebuilds them from the changelogs,
   which hold what was committed, and the records are read again from the committed offsets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, cast

import faust
import faust.transport.consumer as faust_consumer
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

from processors.offset_probe import Readable
from processors.stages.ports import Sink
from processors.topology import app_id
from streams.kafka_config import consumer_config
from streams.settings import KafkaSettings

log = logging.getLogger(__name__)


# Kept: the tests show what Faust does without the workarounds.
UPSTREAM_ADD_GAP = faust_consumer.Consumer._add_gap
UPSTREAM_THREAD_COMMIT = AIOKafkaConsumerThread._commit
UPSTREAM_HIGHWATERS = AIOKafkaConsumerThread._highwaters


def ignore_gaps() -> None:
    """Turns Faust's gap bookkeeping off (process-wide: Faust has no setting for it)."""

    async def no_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        return None

    faust_consumer.Consumer._add_gap = no_gap  # type: ignore[method-assign]


def commit_nothing_when_all_revoked() -> None:
    """Makes the consumer thread's commit a no-op when none of its partitions is still
    assigned (process-wide, like `ignore_gaps`)."""

    async def commit(self: Any, offsets: Any) -> bool:
        if not any(tp in self.assignment() for tp in offsets):
            return False
        return bool(await UPSTREAM_THREAD_COMMIT(self, offsets))

    AIOKafkaConsumerThread._commit = commit  # type: ignore[method-assign]


def recover_to_the_stable_end() -> None:
    """Makes the consumer thread's `highwaters` (recovery's changelog ends) ask the broker under
    exactly_once too (process-wide, like `ignore_gaps`). aiokafka's `end_offsets` answers the last
    stable offset for a read_committed consumer, the end Faust meant."""

    async def highwaters(self: Any, partitions: list[Any]) -> Any:
        return await self._ensure_consumer().end_offsets(partitions)

    AIOKafkaConsumerThread._highwaters = highwaters  # type: ignore[method-assign]


# Answers that mean the group's coordinator is moving or loading (after a broker restart or
# stall, say), or that a transaction committing offsets is still completing (exactly once: read
# as "nothing committed", a restarted worker would start over from the log's start), not that
# the question is wrong: asked again, they pass.
COORDINATOR_NOT_READY = frozenset({
    KafkaError.UNSTABLE_OFFSET_COMMIT,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._WAIT_COORD,
})  # fmt: skip
COMMITTED_RETRY_S = 60.0


def is_coordinator_not_ready(error: BaseException) -> bool:
    """Whether a committed-offsets lookup that raised `error` may pass when asked again."""
    if not isinstance(error, KafkaException):
        return False
    kafka_error = error.args[0] if error.args else None
    return isinstance(kafka_error, KafkaError) and (
        kafka_error.code() in COORDINATOR_NOT_READY or kafka_error.retriable()
    )


def committed_offsets(kafka: KafkaSettings, topic: str) -> dict[int, int | None]:
    """The processors group's committed offset of each partition (None: nothing committed).
    Asked again, with back-off, for up to `COMMITTED_RETRY_S` while the coordinator moves."""
    consumer = Consumer(consumer_config(kafka, app_id(kafka)))
    try:
        wanted = [TopicPartition(topic, partition) for partition in range(kafka.partitions)]
        for attempt in Retrying(
            retry=retry_if_exception(is_coordinator_not_ready),
            stop=stop_after_delay(COMMITTED_RETRY_S),
            wait=wait_exponential_jitter(multiplier=0.1, max=2.0, jitter=0.1),
            reraise=True,
        ):
            with attempt:
                committed = consumer.committed(wanted, timeout=10)
                for tp in committed:  # an answer per partition, and its own error
                    if tp.error is not None:
                        raise KafkaException(tp.error)
        return {tp.partition: None if tp.offset < 0 else int(tp.offset) for tp in committed}
    finally:
        consumer.close()


# Fetched past the next offset to process, with nothing processed from it for this long: the
# fetched records were dropped (an agent takes a batch every 50 ms or so when it has records).
TAIL_WAIT_S = 10.0
# Nothing processed from a partition fetched past its next offset for this long: worth asking
# whether the rest is transaction markers (then it is not lag: the partition is caught up).
MARKER_WAIT_S = 1.0
# A tail this long is worth asking about: a few transactions' markers, not a backlog.
MARKER_TAIL_MAX = 64


class GapProbe(Protocol):
    """What lies in a gap of offsets (`processors.offset_probe.OffsetProbe`)."""

    async def first_readable_async(self, topic: str, partition: int, offset: int) -> Readable: ...

    async def caught_up_async(self, topic: str, partition: int, offset: int) -> bool: ...


class OffsetGuard:
    """Lets through, per partition, only the next run of offsets; on a skip, rewinds the
    partition to the first missing offset, and the records after it are dropped unacknowledged
    (they come again). Also where the worker's processed positions are kept (lag, idle)."""

    def __init__(self, app: faust.App, kafka: KafkaSettings, on_rewind: Callable[[str], None],
                 probe: GapProbe | None = None) -> None:  # fmt: skip
        self._app = app
        self._kafka = kafka
        self._on_rewind = on_rewind
        self._probe = probe  # None: every gap is records dropped (no transactions anywhere)
        self.processed: dict[tuple[str, int], int] = {}  # last offset processed
        self._rewound: dict[tuple[str, int], int] = {}
        self._starts: dict[tuple[str, int], int] = {}
        self._tails: dict[tuple[str, int], tuple[int, float]] = {}  # next offset, since when
        # The last gap asked about per partition, and whether it held nothing readable: the
        # answer does not change, and a rewind meets the same gap in every stale batch.
        self._gaps: dict[tuple[str, int], tuple[int, int, bool]] = {}

    def forget(self) -> None:
        """After a rebalance positions start over from the commits (another worker may have
        moved them on)."""
        self.processed.clear()
        self._rewound.clear()
        self._starts.clear()
        self._tails.clear()
        self._gaps.clear()

    async def in_order(self, events: Sequence[Any]) -> list[Any]:
        """The events that are next on their partitions, in the order given."""
        kept: list[Any] = []
        expected: dict[tuple[str, int], int] = {}
        blocked: set[tuple[str, int]] = set()
        advanced: set[tuple[str, int]] = set()
        owned = self._app.consumer.assignment()
        for event in events:
            message = event.message
            key = (message.topic, message.partition)
            if key in blocked:
                continue
            if message.tp not in owned:  # fetched before a rebalance gave the partition away
                blocked.add(key)
                continue
            if key not in expected:
                last = self.processed.get(key)
                expected[key] = last + 1 if last is not None else await self.start_of(message.tp)
            if message.offset <= expected[key] or await self._nothing_readable_between(
                message.tp, expected[key], message.offset
            ):  # the next one, a redelivery after a seek, or the next past transaction markers
                expected[key] = message.offset + 1
                kept.append(event)
                advanced.add(key)
                continue
            blocked.add(key)
            await self._rewind(message, expected[key])
        for key in expected.keys() - blocked:
            self._rewound.pop(key, None)
        for key in advanced:
            self.processed[key] = expected[key] - 1
        return kept

    async def _readable_from(self, tp: Any, expected: int) -> Readable | None:
        """What the consumer meets first from `expected` on (None: no probe, or no answer)."""
        if self._probe is None:
            return None
        try:
            return await self._probe.first_readable_async(tp.topic, tp.partition, expected)
        except Exception as exc:  # unexplained, so treated as records dropped: rewound
            log.warning("could not ask what lies at %s[%s]@%s: %r", tp.topic, tp.partition,
                        expected, exc)  # fmt: skip
            return None

    async def _nothing_readable_between(self, tp: Any, expected: int, offset: int) -> bool:
        """Whether the record at `offset` is the first the consumer meets from `expected` on
        (the gap is transaction markers or aborted records). Asked of the broker once per gap."""
        key = (tp.topic, tp.partition)
        known = self._gaps.get(key)
        if known is not None and known[:2] == (expected, offset):
            return known[2]
        readable = await self._readable_from(tp, expected)
        if readable is None:  # no answer: not remembered, asked again next time
            return False
        empty = not readable.end and readable.offset == offset
        self._gaps[key] = (expected, offset, empty)
        if empty:
            await self._skip_in_faust(tp, expected, offset)
        return empty

    async def _skip_in_faust(self, tp: Any, first: int, end: int) -> None:
        """Tells Faust's offset bookkeeping that `first`..`end - 1` hold nothing to process: it
        commits only a contiguous run of acknowledged offsets, and would never commit past a
        marker. (Its own gap bookkeeping, off (1.), did this for every hole, lost records too.)"""
        consumer: Any = self._app.consumer
        await UPSTREAM_ADD_GAP(consumer, tp, first, end - 1)

    async def _end_past(self, tp: Any, expected: int) -> int | None:
        """The partition's end, when nothing readable lies between `expected` and it and it is
        further on (a tail of transaction markers, or of aborted records)."""
        readable = await self._readable_from(tp, expected)
        return readable.offset if readable and readable.end and readable.offset > expected else None

    async def _rewind(self, message: Any, expected: int) -> None:
        key = (message.topic, message.partition)
        if self._rewound.get(key) != expected:
            self._rewound[key] = expected
            self._on_rewind(message.topic)
            log.warning("records %s..%s of %s[%s] were skipped by the consumer: rewinding",
                        expected, message.offset - 1, message.topic, message.partition)  # fmt: skip
        # Again for every batch with stale records: Faust's fetcher, still handing out what it
        # had, moves its read offset past ours. (`seek_wait` seeks in the consumer's own
        # thread; `seek` would race its fetcher.)
        await self._app.consumer.seek_wait({message.tp: expected})

    async def check_tail(self, tp: Any, now: float) -> None:
        """For a partition whose next offset has not moved while there is more: once that has
        lasted `MARKER_WAIT_S`, if all that is left is transaction markers (or aborted records),
        it is caught up; once it has lasted `TAIL_WAIT_S` with the consumer fetched past it, it
        is rewound: records dropped at the end of what was fetched, which no later record
        reveals (a partition read to its end after a restart would stall for good)."""
        key = (tp.topic, tp.partition)
        expected = await self.next_offset(tp)
        consumer: Any = self._app.consumer
        position = await consumer.position(tp)
        ends = [offset for offset in (position, consumer.highwater(tp)) if offset is not None]
        if tp not in consumer.assignment() or not ends or max(ends) <= expected:
            self._tails.pop(key, None)
            return
        offset, since = self._tails.setdefault(key, (expected, now))
        if offset != expected:
            self._tails[key] = (expected, now)
        elif (now - since >= MARKER_WAIT_S and max(ends) - expected <= MARKER_TAIL_MAX
              and (end := await self._end_past(tp, expected))):  # fmt: skip
            self._tails.pop(key, None)
            self.processed[key] = end - 1
            await self._skip_in_faust(tp, expected, end)
        elif position is not None and position > expected and now - since >= TAIL_WAIT_S:
            self._tails[key] = (expected, now)
            self._on_rewind(tp.topic)
            log.warning("records %s..%s of %s[%s] were fetched but never handed over: rewinding",
                        expected, position - 1, tp.topic, tp.partition)  # fmt: skip
            await consumer.seek_wait({tp: expected})

    async def caught_up(self, tp: Any) -> bool:
        """Asked of the broker: nothing is left to read on `tp` past what was processed, and no
        transaction is open on it (without a probe: the consumer's copy of the end says so)."""
        expected = await self.next_offset(tp)
        if self._probe is None:
            highwater = self._app.consumer.highwater(tp)
            return highwater is not None and highwater <= expected
        try:
            return await self._probe.caught_up_async(tp.topic, tp.partition, expected)
        except Exception as exc:
            log.warning("could not ask whether %s[%s] is caught up: %r", tp.topic, tp.partition,
                        exc)  # fmt: skip
            return False

    async def next_offset(self, tp: Any) -> int:
        """The next offset to process on `tp`: after the last one processed, or where this
        worker starts it. (Not the consumer's position: that is where the fetcher is, and it
        fetches ahead: a partition fetched but not processed is not caught up.)"""
        last = self.processed.get((tp.topic, tp.partition))
        return last + 1 if last is not None else await self.start_of(tp)

    async def start_of(self, tp: Any) -> int:
        """The group's committed offset when this worker took the partition (asked of the
        broker: Faust's own copy is not there yet while it resumes), else the log's start."""
        key = (tp.topic, tp.partition)
        if key not in self._starts:
            committed = await asyncio.get_running_loop().run_in_executor(
                None, committed_offsets, self._kafka, tp.topic
            )
            for partition, offset in committed.items():
                if offset is not None:
                    self._starts.setdefault((tp.topic, partition), offset)
        if key not in self._starts:
            earliest = await self._app.consumer.earliest_offsets(tp)
            self._starts[key] = earliest.get(tp, 0)
        return self._starts[key]


def flush_outputs_before_commit(app: faust.App, flush: Callable[[], Awaitable[None]]) -> None:
    """Makes Faust await `flush` before each commit: first in the flush it awaits before
    committing offsets (at_least_once), and before it commits its transactions, which it does
    without that flush (exactly_once)."""
    producer: Any = app.producer
    faust_flush: Callable[[], Awaitable[None]] = producer.flush
    commit_transactions: Callable[..., Awaitable[None]] = producer.commit_transactions

    async def flush_both() -> None:
        await flush()
        await faust_flush()

    async def flush_then_commit_transactions(*args: Any, **kwargs: Any) -> None:
        await flush_both()
        await commit_transactions(*args, **kwargs)

    producer.flush = flush_both
    producer.commit_transactions = flush_then_commit_transactions


class CommitGate:
    """Batches run side by side; a commit waits for those in flight and holds new ones back
    until it is done (a commit waiting goes first, or a busy worker would never commit)."""

    def __init__(self) -> None:
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._open = asyncio.Event()
        self._open.set()
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Calls `callback` after each commit, before any batch runs again: what every batch so
        far did is committed then."""
        self._after_commit.append(callback)

    def committed(self) -> None:
        for callback in self._after_commit:
            callback()

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        while not self._open.is_set():
            await self._open.wait()
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    @asynccontextmanager
    async def commit(self) -> AsyncIterator[None]:
        while not self._open.is_set():
            await self._open.wait()
        self._open.clear()
        try:
            await self._idle.wait()
            yield
        finally:
            self._open.set()


# Each app's gate, for the process-wide wrapper below (an app's consumer must not be touched
# before its worker starts: Faust decides once, on first use, whether it runs in transactions).
_GATES: weakref.WeakKeyDictionary[faust.App, CommitGate] = weakref.WeakKeyDictionary()
UPSTREAM_COMMIT = faust_consumer.Consumer.commit


def commit_between_batches(app: faust.App, gate: CommitGate) -> None:
    """Makes every commit of the app's consumer (timer, fetcher, stop) go through `gate`
    (process-wide, like `ignore_gaps`; consumers of other apps commit as Faust does)."""
    _GATES[app] = gate

    async def commit(self: Any, *args: Any, **kwargs: Any) -> bool:
        app_gate = _GATES.get(self.app)
        if app_gate is None:
            return bool(await UPSTREAM_COMMIT(self, *args, **kwargs))
        async with app_gate.commit():
            did_commit = bool(await UPSTREAM_COMMIT(self, *args, **kwargs))
            if did_commit:
                app_gate.committed()
            return did_commit

    faust_consumer.Consumer.commit = commit  # type: ignore[method-assign]


def has_transaction(app: faust.App, transactional_id: str) -> bool:
    """Whether Faust's producer has the transaction open (the worker owns its partition)."""
    producer: Any = app.producer
    return transactional_id in producer._transaction_producers


def complete_buffer_flush(app: faust.App) -> None:
    """Makes the producer buffer's `flush` send every queued message and wait for the ones its
    background task is sending (call before the app starts: the task reads `_send_pending` once)."""
    buffer: Any = app.producer.buffer
    send_one: Callable[[Any], Awaitable[None]] = buffer._send_pending
    in_flight = 0
    idle = asyncio.Event()
    idle.set()

    async def send_counted(message: Any) -> None:
        nonlocal in_flight
        in_flight += 1
        idle.clear()
        try:
            await send_one(message)
        finally:
            in_flight -= 1
            if not in_flight:
                idle.set()

    async def flush() -> None:
        while True:
            try:
                message = buffer.pending.get_nowait()
            except asyncio.QueueEmpty:
                break
            await send_counted(message)
        await idle.wait()

    buffer._send_pending = send_counted
    buffer.flush = flush


async def start_over_from_the_commits(app: faust.App, tables: Sequence[faust.Table]) -> None:  # type: ignore[type-arg]
    """Aborts the app's open transactions and empties `tables`, whose changelogs recovery then
    reads again from their start (see 10. above). The tables are in Faust's memory store (the
    processors' default, and the only store installed): it keeps no offsets of its own, so
    recovery starts from each changelog's beginning once the partition's offset is dropped."""
    producer: Any = app.producer
    for transactional_id in list(producer._transaction_producers):
        await producer.abort_transaction(transactional_id)
    manager: Any = app.tables
    recovery = manager.recovery
    for table in tables:
        store: Any = table.data
        store.data.clear()
        store._key_partition.clear()
        changelog = table.changelog_topic.get_topic_name()
        for tp in [tp for tp in recovery.active_offsets if tp.topic == changelog]:
            recovery.revoke(tp)  # read from the start at the next recovery
    log.info("exactly once: transactions aborted, tables rebuilt from the changelogs")


class PartitionedTable(faust.Table):  # type: ignore[type-arg]
    """A Faust table whose rows are written for a partition the stage names (see 5. above)."""

    _writing: int | None = None
    direct: Sink | None = None  # set: changelog records go there, not through Faust

    def partition_for_key(self, key: Any) -> int | None:
        return self._writing

    def put(self, partition: int, key: str, value: Any) -> None:
        if self.direct is None:
            self._writing = partition
            self[key] = value
            return
        self.data[key] = value
        self._remember(key, partition)
        self.direct.send(self._topic_name, json.dumps(key).encode(), json.dumps(value).encode(),
                         partition=partition)  # fmt: skip

    def delete(self, partition: int, key: str) -> None:
        if self.direct is None:
            self._writing = partition
            self.pop(key, None)
            return
        if key not in self.data:
            return
        del self.data[key]
        self.direct.send(self._topic_name, json.dumps(key).encode(), None, partition=partition)

    @property
    def _topic_name(self) -> str:
        return str(self.changelog_topic.get_topic_name())

    def _remember(self, key: str, partition: int) -> None:
        """Which partition a row belongs to, as the memory store records it for rows it
        recovers: a row of a partition this worker no longer owns is dropped after the next
        rebalance's recovery (Faust records it only for recovered rows)."""
        owners = getattr(self.data, "_key_partition", None)
        if owners is not None:
            owners[key] = partition

    @classmethod
    def add_to(cls, app: faust.App, name: str, partitions: int,
               direct: Sink | None) -> PartitionedTable:  # fmt: skip
        table = cls(app, name=name, beacon=app.tables.beacon, partitions=partitions)
        table.direct = direct
        return cast(PartitionedTable, app.tables.add(table))


def fetch_flags(app: faust.App, tp: Any) -> list[str]:
    """Whether Faust paused fetching `tp` or found its buffer full (private sets)."""
    consumer: Any = app.consumer
    sets = (("paused", consumer._paused_partitions), ("buffer-full", consumer._buffered_partitions))
    return [name for name, tps in sets if tp in tps]
