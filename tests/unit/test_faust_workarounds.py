"""Each workaround in `processors.faust_workarounds` (and the shell's rebalance fence), shown
against what Faust does without it. Faust's own code is called where it can run without a broker
(its offset bookkeeping); elsewhere a stand-in plays the part of Faust's consumer or producer.
The end-to-end proofs are the integration tests named in each docstring."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, cast

import faust
import faust.transport.consumer as faust_consumer
import pytest
from aiokafka.util import commit_structure_validate
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AiokafkaConsumer
from faust.types import TP
from intervaltree import IntervalTree
from prometheus_client import CollectorRegistry

from processors import faust_workarounds
from processors.app import create_app
from processors.faust_workarounds import (
    MARKER_WAIT_S,
    TAIL_WAIT_S,
    UPSTREAM_ADD_GAP,
    UPSTREAM_HIGHWATERS,
    UPSTREAM_THREAD_COMMIT,
    CommitGate,
    OffsetGuard,
    PartitionedTable,
    commit_nothing_when_all_revoked,
    committed_offsets,
    complete_buffer_flush,
    flush_outputs_before_commit,
    ignore_gaps,
    is_coordinator_not_ready,
    recover_to_the_stable_end,
    start_over_from_the_commits,
)
from processors.harness import MemorySink
from processors.metrics import ProcessorMetrics
from processors.offset_probe import Readable
from processors.output import OutputDeliveryError
from processors.settings import ProcessorSettings
from processors.shell import FencedSink, RebalanceFence
from processors.stages.ports import Rebalanced
from processors.transactional_output import TransactionalOutput
from streams.dlq import DeadLetter
from streams.settings import KafkaSettings

TOPIC = TP("job-events", 0)


def offset_book() -> Any:
    """Faust's consumer with only its offset bookkeeping (what `_add_gap` and `_new_offset`
    touch), no broker."""
    consumer: Any = object.__new__(AiokafkaConsumer)  # the driver's: the base is abstract
    consumer._acked = defaultdict(list)
    consumer._acked_index = defaultdict(set)
    consumer._gap = defaultdict(IntervalTree)
    consumer._committed_offset = defaultdict(lambda: None)
    return consumer


def test_faust_commits_past_a_gap_and_ignore_gaps_stops_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records 3..5 were dropped around a restart (faust-streaming#606, #378); the next fetched
    is 6. Faust files 3..5 as a gap and commits past them, unprocessed; without the gap the
    commit stops at 3, and the guard rewinds to read them."""
    book = offset_book()
    book._acked[TOPIC] = [0, 1, 2, 6]
    asyncio.run(UPSTREAM_ADD_GAP(book, TOPIC, 3, 5))
    assert faust_consumer.Consumer._new_offset(book, TOPIC) == 7  # 3, 4, 5 never processed

    monkeypatch.setattr(faust_consumer.Consumer, "_add_gap", UPSTREAM_ADD_GAP)
    ignore_gaps()
    book = offset_book()
    book._acked[TOPIC] = [0, 1, 2, 6]
    asyncio.run(faust_consumer.Consumer._add_gap(book, TOPIC, 3, 5))
    assert faust_consumer.Consumer._new_offset(book, TOPIC) == 3


@dataclass
class Message:
    topic: str
    partition: int
    offset: int

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


@dataclass
class Event:
    message: Message


class StandInConsumer:
    def __init__(self, assigned: set[TP]) -> None:
        self.assigned = assigned
        self.seeks: list[dict[TP, int]] = []
        self.fetched_to = 0
        self.high: int | None = None
        book = offset_book()  # Faust's own bookkeeping, where the guard hands marker gaps
        self._acked, self._gap = book._acked, book._gap
        self._committed_offset, self._acked_index = book._committed_offset, book._acked_index

    def assignment(self) -> set[TP]:
        return self.assigned

    def highwater(self, tp: TP) -> int | None:
        return self.high

    async def position(self, tp: TP) -> int:
        return self.fetched_to

    async def seek_wait(self, offsets: dict[TP, int]) -> None:
        self.seeks.append(offsets)


def events(partition: int, *offsets: int) -> list[Event]:
    return [Event(Message(TOPIC.topic, partition, offset)) for offset in offsets]


def test_the_guard_lets_through_the_next_offsets_and_rewinds_past_a_skip() -> None:
    """Faust hands a stream records past ones it dropped from its queues around a rebalance
    (faust-streaming#216, #221): 5 and 6 never come. The guard keeps 3 and 4, drops the rest
    unacknowledged and seeks back to 5; records of a partition no longer assigned (fetched
    before the rebalance) are dropped."""
    consumer = StandInConsumer({TOPIC})
    app: Any = type("App", (), {"consumer": consumer})()
    rewinds: list[str] = []
    guard = OffsetGuard(app, KafkaSettings(), on_rewind=rewinds.append)
    guard.processed[TOPIC.topic, 0] = 2
    batch = events(0, 3, 4, 7, 8) + events(1, 0)  # partition 1 is not assigned
    kept = asyncio.run(guard.in_order(batch))
    assert [event.message.offset for event in kept] == [3, 4]
    assert consumer.seeks == [{TOPIC: 5}] and rewinds == [TOPIC.topic]
    assert asyncio.run(guard.next_offset(TOPIC)) == 5
    # Redelivered from 5 after the seek: let through.
    again = asyncio.run(guard.in_order(events(0, 5, 6, 7)))
    assert [event.message.offset for event in again] == [5, 6, 7]


def test_a_skip_at_the_tail_is_rewound_once_the_next_offset_stands_still() -> None:
    """Records 3..9 fetched and dropped, and nothing after them to reveal the hole (the
    partition was read to its end): the next offset stands still while the consumer is past it.
    Seen after a kill -9: the last worker never went idle. After `TAIL_WAIT_S` the guard seeks
    back; records that move on in the meantime reset the wait."""
    consumer = StandInConsumer({TOPIC})
    app: Any = type("App", (), {"consumer": consumer})()
    guard = OffsetGuard(app, KafkaSettings(), on_rewind=lambda topic: None)
    guard.processed[TOPIC.topic, 0] = 2
    consumer.fetched_to = 10
    for now in (0.0, 5.0):
        asyncio.run(guard.check_tail(TOPIC, now))
    assert consumer.seeks == []
    asyncio.run(guard.check_tail(TOPIC, TAIL_WAIT_S))
    assert consumer.seeks == [{TOPIC: 3}]
    guard.processed[TOPIC.topic, 0] = 5  # records came meanwhile: a new wait begins
    asyncio.run(guard.check_tail(TOPIC, TAIL_WAIT_S + 1))
    asyncio.run(guard.check_tail(TOPIC, 2 * TAIL_WAIT_S))
    assert consumer.seeks == [{TOPIC: 3}]
    consumer.fetched_to = 6  # all handed over: nothing to wait for
    asyncio.run(guard.check_tail(TOPIC, 3 * TAIL_WAIT_S + 2))
    assert consumer.seeks == [{TOPIC: 3}]


class StandInProducer:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    async def flush(self) -> None:
        self.calls.append("faust flush")

    async def commit_transactions(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append("commit transactions")


def test_outputs_are_flushed_before_either_kind_of_commit() -> None:
    """At least once Faust flushes its producer before committing offsets; exactly once it
    commits its transactions without any flush. Ours goes first in both."""
    calls: list[str] = []
    app: Any = type("App", (), {"producer": StandInProducer(calls)})()

    async def ours() -> None:
        calls.append("our flush")

    flush_outputs_before_commit(app, ours)
    asyncio.run(app.producer.flush())
    asyncio.run(app.producer.commit_transactions({}, "group"))
    # Exactly once, Faust's own buffer too: table rows wait there, and must be in the
    # transaction that commits the offsets saying they are done.
    assert calls == ["our flush", "faust flush"] * 2 + ["commit transactions"]


@dataclass
class SlowChannel:
    """Stands in for a changelog topic whose sends take `send_s` (a busy loop, a full batch)."""

    sent: list[int]
    send_s: float = 0.25

    async def publish_message(self, message: Any, wait: bool = False) -> None:
        await asyncio.sleep(self.send_s)
        self.sent.append(message.number)


@dataclass
class BufferedRow:
    number: int
    channel: SlowChannel

    @property
    def message(self) -> BufferedRow:  # Faust's FutureMessage: `.message.channel`
        return self


def flushed_from_buffer(complete: bool) -> tuple[list[int], int]:
    """Three rows put in Faust's running producer buffer, then `flush`: which were sent when it
    returned, and how many it left queued."""
    sent: list[int] = []

    async def run() -> int:
        # Built in the running loop: a mode service's tasks run on the loop it was made in.
        app = faust.App("buffer-test", broker="kafka://127.0.0.1:1")
        buffer: Any = app.producer.buffer
        if complete:
            complete_buffer_flush(app)
        await buffer.start()
        for number in range(3):
            buffer.put(BufferedRow(number, SlowChannel(sent)))
        await buffer.flush()
        left = int(buffer.size)
        buffer.pending = asyncio.Queue()  # what is left is not this test's to send
        await buffer.stop()
        return left

    left = asyncio.run(run())
    return sent, left


def test_a_buffer_flush_waits_for_every_row() -> None:
    """Faust's buffer flush gives up once no message left for 0.1 s: rows still queued (and the
    one being sent) would miss the transaction that commits their records."""
    sent, left = flushed_from_buffer(complete=False)
    assert len(sent) < 3 and left > 0  # upstream: returned early
    sent, left = flushed_from_buffer(complete=True)
    assert sorted(sent) == [0, 1, 2] and left == 0


def test_a_partitioned_table_writes_the_row_for_the_partition_named() -> None:
    """Faust takes a row's partition from the event being iterated; a stage writes after a
    whole batch, for the partition it names. Under at_least_once the changelog record goes
    through our producer, to that partition, and the memory store learns the row's owner."""
    app = faust.App("workaround-test", broker="kafka://127.0.0.1:1")
    sink = MemorySink()
    table = PartitionedTable.add_to(app, "rows", 4, sink)
    table.put(3, "job-1", {"n": 1})
    table.delete(3, "job-1")
    table.delete(2, "job-2")  # never there: nothing sent
    changelog = table.changelog_topic.get_topic_name()
    assert sink.logs[changelog, 3] == [(b'"job-1"', b'{"n": 1}'), (b'"job-1"', None)]
    assert (changelog, 2) not in sink.logs


def test_a_batch_a_rebalance_overtakes_stops_at_its_next_wait() -> None:
    """The rebalance count moves in Faust's consumer thread as soon as partitions are revoked;
    a batch that began before stops when it next waits for its outputs, and each agent (task)
    keeps its own starting point."""
    state = {"count": 0, "rebalancing": False}
    fence = RebalanceFence(lambda: state["count"], lambda: state["rebalancing"])
    sink = FencedSink(MemorySink(), fence)

    async def batch(rebalance_meanwhile: bool) -> str:
        assert fence.begin()
        if rebalance_meanwhile:
            state["count"] += 1
        try:
            await sink.delivered()
        except Rebalanced:
            return "dropped"
        return "done"

    async def both() -> list[str]:
        first = await batch(rebalance_meanwhile=True)
        second = await asyncio.create_task(batch(rebalance_meanwhile=False))
        return [first, second]

    assert asyncio.run(both()) == ["dropped", "done"]
    state["rebalancing"] = True
    assert not fence.begin()  # mid-rebalance: the batch may hold revoked partitions' records


class StandInAiokafka:
    """aiokafka's consumer as far as a commit goes: it validates the offsets as aiokafka does."""

    def __init__(self) -> None:
        self.committed: list[Any] = []

    async def commit(self, offsets: Any) -> None:
        self.committed.append(commit_structure_validate(offsets))


def consumer_thread(assigned: set[TP]) -> tuple[Any, StandInAiokafka, list[BaseException]]:
    thread: Any = object.__new__(AIOKafkaConsumerThread)
    aiokafka = StandInAiokafka()
    crashes: list[BaseException] = []

    async def crash(exc: BaseException) -> None:
        crashes.append(exc)

    thread.assignment = lambda: assigned
    thread._ensure_consumer = lambda: aiokafka
    thread.tp_last_committed_at = {}
    thread.crash = crash
    thread.log = logging.getLogger("test")
    return thread, aiokafka, crashes


def test_a_commit_whose_partitions_were_all_revoked_does_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """faust-streaming#94: the consumer thread drops partitions revoked since Faust chose what
    to commit; when that leaves none, aiokafka is handed {} and raises, and the worker crashes."""
    upstream = UPSTREAM_THREAD_COMMIT
    thread, aiokafka, crashes = consumer_thread(assigned=set())
    assert asyncio.run(upstream(thread, {TOPIC: 5})) is False
    assert [type(exc) for exc in crashes] == [ValueError]

    monkeypatch.setattr(AIOKafkaConsumerThread, "_commit", upstream)
    commit_nothing_when_all_revoked()
    thread, aiokafka, crashes = consumer_thread(assigned=set())
    assert asyncio.run(AIOKafkaConsumerThread._commit(thread, {TOPIC: 5})) is False
    assert crashes == [] and aiokafka.committed == []
    thread, aiokafka, crashes = consumer_thread(assigned={TOPIC})  # still assigned: committed
    assert asyncio.run(AIOKafkaConsumerThread._commit(thread, {TOPIC: 5})) is True
    assert crashes == [] and len(aiokafka.committed) == 1


class FreshAiokafka:
    """aiokafka's consumer right after a worker starts: nothing fetched yet, so nothing cached;
    the broker knows the changelog's last stable offset."""

    def last_stable_offset(self, tp: TP) -> int | None:
        return None  # "not available until some messages are consumed"

    async def end_offsets(self, partitions: list[TP]) -> dict[TP, int]:
        return {tp: 247 for tp in partitions}


def recovery_highwaters(highwaters: Any) -> Any:
    thread: Any = object.__new__(AIOKafkaConsumerThread)
    thread.consumer = type("Consumer", (), {"in_transaction": True})()
    aiokafka = FreshAiokafka()
    thread._ensure_consumer = lambda: aiokafka
    return asyncio.run(highwaters(thread, [TOPIC]))


def test_recovery_under_exactly_once_reads_the_changelog_to_its_stable_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faust's recovery asks the consumer thread for each changelog's end. Under exactly_once it
    answers aiokafka's cached last stable offset, None before the first fetch: recovery takes the
    changelog for empty (highwater -1) and the worker starts with empty tables. (Seen in the
    delivery test's restarts: a restarted worker logged -1 for every changelog partition and sent
    outcomes without their start times.)"""
    assert recovery_highwaters(UPSTREAM_HIGHWATERS) == {TOPIC: None}
    monkeypatch.setattr(AIOKafkaConsumerThread, "_highwaters", UPSTREAM_HIGHWATERS)
    recover_to_the_stable_end()
    assert recovery_highwaters(AIOKafkaConsumerThread._highwaters) == {TOPIC: 247}


class OpenTransactions:
    """Faust's producer with a transaction open per partition group."""

    def __init__(self, *ids: str) -> None:
        self._transaction_producers = dict.fromkeys(ids)
        self.aborted: list[str] = []

    async def abort_transaction(self, transactional_id: str) -> None:
        self.aborted.append(transactional_id)


def test_a_rebalance_under_exactly_once_starts_over_from_what_was_committed() -> None:
    """Faust keeps transactions open across a rebalance and tables as the worker left them: rows
    of a transaction the partition's next owner aborts stay in memory, and an edge counted only
    there never makes its outcome (the scaling test under exactly_once lost a third of them).
    Every open transaction is aborted, every table emptied, and recovery reads each changelog
    from its start again."""
    app = faust.App("start-over-test", broker="kafka://127.0.0.1:1")
    table = PartitionedTable.add_to(app, "latest", 2, None)
    store: Any = table.data
    store.data["job-1"] = [1, 5, "w", False]  # written in a transaction about to be aborted
    store._key_partition["job-1"] = 1
    changelog = table.changelog_topic.get_topic_name()
    recovery: Any = cast(Any, app.tables).recovery
    recovery.active_offsets[TP(changelog, 1)] = 41  # recovered up to here
    recovery.active_offsets[TP("other-changelog", 1)] = 7
    producer = OpenTransactions("app-1-0", "app-1-1")
    stand_in: Any = type("App", (), {"producer": producer, "tables": app.tables})()
    asyncio.run(start_over_from_the_commits(stand_in, [table]))
    assert producer.aborted == ["app-1-0", "app-1-1"]
    assert dict(store.data) == {} and dict(store._key_partition) == {}
    assert TP(changelog, 1) not in recovery.active_offsets  # read from the start again
    assert recovery.active_offsets[TP("other-changelog", 1)] == 7


@dataclass
class Answered:
    """A partition in librdkafka's answer, with its own error (TopicPartition's is read-only)."""

    topic: str
    partition: int
    offset: int
    error: KafkaError | None = None


class CoordinatorMoving:
    """Stands in for librdkafka's Consumer: its first `committed` calls fail the way a broker
    answers while the group's coordinator moves (seen in CI after a broker's SIGSTOP), then with
    one partition's offset unstable (read as "nothing committed", a restarted worker rewound to
    the log's start)."""

    calls = 0

    def __init__(self, config: dict[str, Any]) -> None:
        pass

    def committed(self, wanted: list[Any], timeout: float) -> list[Any]:
        type(self).calls += 1
        if type(self).calls == 1:
            raise KafkaException(KafkaError(KafkaError.NOT_COORDINATOR))
        if type(self).calls == 2:  # exactly once: a transaction's offsets still completing
            unstable = KafkaError(KafkaError.UNSTABLE_OFFSET_COMMIT)
            return [Answered(tp.topic, tp.partition, -1001, unstable) for tp in wanted]
        return [TopicPartition(tp.topic, tp.partition, 5 if tp.partition == 0 else -1001)
                for tp in wanted]  # fmt: skip

    def close(self) -> None:
        pass


def test_committed_offsets_asks_again_while_the_coordinator_moves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(faust_workarounds, "Consumer", CoordinatorMoving)
    CoordinatorMoving.calls = 0
    offsets = committed_offsets(KafkaSettings(partitions=2), "job-events")
    assert offsets == {0: 5, 1: None}
    assert CoordinatorMoving.calls == 3


def test_a_wrong_question_is_not_asked_again() -> None:
    assert is_coordinator_not_ready(KafkaException(KafkaError(KafkaError.NOT_COORDINATOR)))
    assert is_coordinator_not_ready(
        KafkaException(KafkaError(KafkaError.COORDINATOR_LOAD_IN_PROGRESS))
    )
    assert not is_coordinator_not_ready(
        KafkaException(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED))
    )
    assert not is_coordinator_not_ready(ValueError("not Kafka"))


class StandInProbe:
    """The broker's answer to "what lies at this offset" (`processors.offset_probe`): a set of
    offsets that hold readable records, up to an end."""

    def __init__(self, readable: set[int], end: int) -> None:
        self.readable = readable
        self.end = end
        self.asked: list[int] = []

    async def first_readable_async(self, topic: str, partition: int, offset: int) -> Readable:
        self.asked.append(offset)
        after = sorted(o for o in self.readable if o >= offset)
        return Readable(after[0]) if after else Readable(self.end, end=True)

    async def caught_up_async(self, topic: str, partition: int, offset: int) -> bool:
        return (await self.first_readable_async(topic, partition, offset)).end


def test_a_gap_of_transaction_markers_is_not_a_skip() -> None:
    """Exactly once, each transaction's commit marker takes an offset (5, 6: two transactions
    committed), and read_committed skips aborted records: 7 comes right after 4 with nothing
    lost. The guard asks the broker once and lets 7 through; a gap that does hold a record
    (9 readable, 10 handed over) is rewound as before."""
    consumer = StandInConsumer({TOPIC})
    app: Any = type("App", (), {"consumer": consumer})()
    probe = StandInProbe(readable={3, 4, 7, 8, 9, 10}, end=11)
    guard = OffsetGuard(app, KafkaSettings(), on_rewind=lambda topic: None, probe=probe)
    guard.processed[TOPIC.topic, 0] = 2
    kept = asyncio.run(guard.in_order(events(0, 3, 4, 7, 8)))
    assert [event.message.offset for event in kept] == [3, 4, 7, 8]
    assert consumer.seeks == [] and probe.asked == [5]
    # Faust commits only a contiguous run of acknowledged offsets: told of the gap, it commits
    # past the markers once 3, 4, 7 and 8 are acknowledged (without it: 5, for good).
    consumer._committed_offset[TOPIC] = 2
    consumer._acked[TOPIC] = [3, 4, 7, 8]
    assert faust_consumer.Consumer._new_offset(consumer, TOPIC) == 9
    kept = asyncio.run(guard.in_order(events(0, 10)))  # 9 was dropped
    assert kept == [] and consumer.seeks == [{TOPIC: 9}]
    # Faust hands the same stale record again before the seek takes: the answer is known.
    asyncio.run(guard.in_order(events(0, 10)))
    assert consumer.seeks == [{TOPIC: 9}] * 2 and probe.asked == [5, 9]


def test_a_tail_of_transaction_markers_is_caught_up() -> None:
    """The last transaction's marker at offset 5, after records up to 4: the high watermark is
    6, yet nothing is left to read. Once the next offset has stood still for `MARKER_WAIT_S` the
    guard asks, and the partition counts as caught up (else the worker never went idle); an
    open transaction's records past the last stable offset are still to come."""
    consumer = StandInConsumer({TOPIC})
    app: Any = type("App", (), {"consumer": consumer})()
    guard = OffsetGuard(app, KafkaSettings(), on_rewind=lambda topic: None,
                        probe=StandInProbe(readable=set(), end=6))  # fmt: skip
    guard.processed[TOPIC.topic, 0] = 4
    consumer.fetched_to, consumer.high = 6, 6
    asyncio.run(guard.check_tail(TOPIC, 0.0))
    assert asyncio.run(guard.next_offset(TOPIC)) == 5
    asyncio.run(guard.check_tail(TOPIC, MARKER_WAIT_S))
    assert asyncio.run(guard.next_offset(TOPIC)) == 6 and consumer.seeks == []
    consumer._committed_offset[TOPIC] = 4  # the next record, 6, commits past the marker
    consumer._acked[TOPIC] = [6]
    assert faust_consumer.Consumer._new_offset(consumer, TOPIC) == 7
    # Last stable offset 8, high watermark 12: caught up to 8 only.
    guard = OffsetGuard(app, KafkaSettings(), on_rewind=lambda topic: None,
                        probe=StandInProbe(readable=set(), end=8))  # fmt: skip
    guard.processed[TOPIC.topic, 0] = 6
    consumer.fetched_to, consumer.high = 8, 12
    for now in (0.0, MARKER_WAIT_S):
        asyncio.run(guard.check_tail(TOPIC, now))
    assert asyncio.run(guard.next_offset(TOPIC)) == 8


def test_a_commit_waits_for_the_batches_in_flight_and_holds_new_ones_back() -> None:
    """Exactly once, a transaction committed while a batch is half done would commit that
    batch's outputs with the offsets from before it (read again after a crash: sent twice)."""
    gate = CommitGate()
    order: list[str] = []

    async def batch(name: str, steps: int) -> None:
        async with gate.batch():
            order.append(f"{name} starts")
            for _ in range(steps):
                await asyncio.sleep(0)
            order.append(f"{name} acks")

    async def commit() -> None:
        async with gate.commit():
            order.append("commit")
            await asyncio.sleep(0)

    async def scenario() -> None:
        first = asyncio.create_task(batch("a", 5))
        await asyncio.sleep(0)  # a is in flight
        committing = asyncio.create_task(commit())
        await asyncio.sleep(0)  # the commit waits for a
        second = asyncio.create_task(batch("b", 1))
        await asyncio.gather(first, committing, second)

    asyncio.run(scenario())
    assert order == ["a starts", "a acks", "commit", "b starts", "b acks"]


class StandInTransactions:
    """Faust's producer under exactly_once: a send names its transaction, which must be open."""

    def __init__(self) -> None:
        self._transaction_producers = {"app-0-5": object(), "app-0-1": object()}
        self.sent: list[tuple[str, str, int | None]] = []
        self.fail = False

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None, timestamp: float | None, headers: Any, *,
                   transactional_id: str) -> asyncio.Future[None]:  # fmt: skip
        if self.fail:
            raise RuntimeError("broker gone")
        self.sent.append((transactional_id, topic, partition))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def test_exactly_once_an_output_goes_in_its_source_partitions_transaction() -> None:
    """Faust would pick the transaction of the destination partition; an output must commit
    with the offsets of the records it derives from. Outside a batch (timers) the librdkafka
    output takes it. An output of a transaction this worker no longer has (revoked) is dropped;
    a failure fails every later flush, so no transaction commits after it."""
    transactions = StandInTransactions()
    assignor = type("Assignor", (), {"group_for_topic": lambda self, topic: 0})()
    conf = type("Conf", (), {"id": "app"})()
    app: Any = type("App", (), {"producer": transactions, "assignor": assignor, "conf": conf})()
    outside = MemorySink()
    output = TransactionalOutput(app, outside, max_message_bytes=1_000_000)
    with output.source("job-events", 5):
        output.send("sightings", None, b"s", partition=0)
        output.send_dead_letter("dlq", DeadLetter("invalid", "bad", "job-events", 5, 9, None, b"x"))
    with output.source("job-events", 7):  # revoked meanwhile: its transaction is gone
        output.send("sightings", None, b"r", partition=2)
    output.send("edges", None, b"mark", partition=2)  # a timer's: no source
    assert transactions.sent == []  # buffered until the stage waits or Faust commits
    asyncio.run(output.delivered())
    assert transactions.sent == [("app-0-5", "sightings", 0), ("app-0-5", "dlq", None)]
    assert outside.logs["edges", 2] == [(None, b"mark")] and outside.flushes == 1
    with output.source("job-events", 1):
        output.send("sightings", None, b"t", partition=1)
    output.discard()  # revoked: read again by the next owner
    asyncio.run(output.delivered())
    assert len(transactions.sent) == 2
    transactions.fail = True
    with output.source("job-events", 1):
        output.send("sightings", None, b"u", partition=1)
    for _ in range(2):
        with pytest.raises(OutputDeliveryError):
            asyncio.run(output.delivered())


def test_building_the_app_leaves_faust_to_decide_on_transactions_in_the_worker() -> None:
    """Faust decides once, on first use, whether the app runs in transactions: only inside a
    worker (`in_worker`, set as the worker starts). Touching the app's consumer while the app
    is built made that decision too early, and exactly_once silently ran without transactions
    (every transactional output was dropped: no transaction was open). Hence the commit gate's
    process-wide wrapper rather than a wrapper on the consumer."""
    settings = ProcessorSettings(processing_guarantee="exactly_once")
    app = create_app(settings, KafkaSettings(), ProcessorMetrics.create(CollectorRegistry()))
    assert "in_transaction" not in app.__dict__  # not decided yet
    app.in_worker = True
    assert app.in_transaction
