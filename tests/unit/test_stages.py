"""The real stages over the broker-free harness: requests, dead letters, re-sent ids, batching,
and the internal records' codec."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import pytest

from processors.attempts import AttemptEdge, Dimension, dimension_key
from processors.concurrency import MAX_ENDED, Count, Mark
from processors.dedup import Sighting
from processors.fingerprint import fingerprint
from processors.harness import Harness
from processors.outcomes import recompute
from processors.records import (
    Counts,
    Edges,
    EventTime,
    InternalRecord,
    Sightings,
    Sweep,
    decode,
    encode,
    partition_of,
)
from processors.settings import ProcessorSettings
from schemas.codec import SingleObjectCodec
from schemas.job_event import JobError, JobEvent, JobEventType
from streams.demo.workload import Workload, WorkloadConfig
from tests.factories import make_event

CODEC = SingleObjectCodec()
EDGE = AttemptEdge(5, "job-1", "send-email", 2, "w1", JobEventType.FAILED, False, 1, "ab" * 32)


@pytest.mark.parametrize(
    "record",
    [
        Sightings((Sighting("f" * 64, "T: <n>", "T: 1", "send-email", 7),)),
        Sweep("model-a"),
        Edges(((Dimension.WORKER, EDGE, False), (Dimension.JOB_NAME, EDGE, True))),
        EventTime(3, Mark(1_000, idle=True)),
        Counts((Count(EDGE, Dimension.JOB_NAME, 4),)),
    ],
)
def test_internal_records_round_trip(record: InternalRecord) -> None:
    assert decode(encode(record)) == record


@pytest.mark.parametrize("value", [None, b"", b"[]", b'{"k": "nope"}', b'{"k": "edges"}', b"\xff"])
def test_anything_else_is_a_clear_value_error(value: bytes | None) -> None:
    with pytest.raises(ValueError, match="not an internal record"):
        decode(value)


def test_partitions_are_stable_and_spread() -> None:
    owners = {partition_of(f"key-{i}", 6) for i in range(200)}
    assert owners == set(range(6))
    assert partition_of("worker\x1fw1", 6) == partition_of("worker\x1fw1", 6)


def run(harness: Harness, values: list[bytes], partition: int = 0) -> None:
    harness.produce({partition: values})
    asyncio.run(harness.run())


def failed(job: str, message: str, seconds: int = 0) -> bytes:
    occurred = make_event().occurred_at + timedelta(seconds=seconds)
    event = make_event(event_id=f"{job}-{seconds}", job_id=job, occurred_at=occurred,
                       error=JobError("TimeoutError", message, None))  # fmt: skip
    return CODEC.encode(event)


def test_one_request_per_distinct_error_whatever_the_batches() -> None:
    harness = Harness(batch_size=3)
    values = [failed(f"job-{i}", f"timed out after {i} ms", i) for i in range(30)]
    values += [failed(f"job-{i}", f"connection refused to 10.0.0.{i}", i) for i in range(30, 40)]
    run(harness, values)
    requests = harness.requests()
    assert len(requests) == 2
    assert {r.fingerprint for r in requests} == {
        fingerprint(JobError("TimeoutError", "timed out after 1 ms", None)).sha256,
        fingerprint(JobError("TimeoutError", "connection refused to 10.0.0.1", None)).sha256,
    }
    row = harness.tables["fingerprints"][requests[0].fingerprint]
    assert row["count"] + harness.tables["fingerprints"][requests[1].fingerprint]["count"] == 40
    assert row["models"] == ["model-a"]


def test_a_new_model_requests_every_known_error_once() -> None:
    harness = Harness()
    run(harness, [failed(f"job-{i}", f"error kind {'ab'[i % 2]}") for i in range(10)])
    assert len(harness.requests()) == 2
    for partition in range(harness.topology.partitions):
        harness.sink.send(harness.topology.sightings, None, encode(Sweep("model-b")),
                          partition=partition)  # fmt: skip
        harness.sink.send(harness.topology.sightings, None, encode(Sweep("model-b")),
                          partition=partition)  # twice: the second finds nothing  # fmt: skip
    asyncio.run(harness.run())
    assert sorted(r.model for r in harness.requests()) == ["model-a"] * 2 + ["model-b"] * 2


def test_poison_and_resent_events_each_counted_once_and_the_rest_flows() -> None:
    harness = Harness()
    good = failed("job-1", "boom")
    run(harness, [b"not avro", good, good, CODEC.encode(make_event(job_id=""))])
    assert [letter.reason for letter in harness.sink.dead_letters] == [
        "undecodable",
        "missing_job_id",
    ]
    assert [letter.offset for letter in harness.sink.dead_letters] == [0, 3]
    assert harness.metrics.duplicates._value.get() == 1
    assert len(harness.requests()) == 1


def test_a_bad_internal_record_is_dead_lettered_not_a_crash_loop() -> None:
    harness = Harness()
    for topic in (harness.topology.sightings, harness.topology.edges, harness.topology.counts):
        harness.sink.send(topic, None, b"garbage", partition=1)
    run(harness, [failed("job-1", "boom")])
    letters = harness.sink.dead_letters
    assert sorted(letter.topic for letter in letters) == sorted(
        [harness.topology.sightings, harness.topology.edges, harness.topology.counts]
    )
    assert {letter.reason for letter in letters} == {"handler_error"}
    assert harness.concurrency.held() == 0


def test_rows_of_jobs_that_ended_go_after_the_horizon_even_across_a_restart() -> None:
    settings = ProcessorSettings(embedding_model="model-a", horizon_ms=60_000)
    harness = Harness(settings, batch_size=3)  # small batches: halves joined across batches
    events = list(Workload(WorkloadConfig(jobs=200), seed=4).events())
    harness.produce({0: [CODEC.encode(event) for event in events]})
    asyncio.run(harness.run())
    ended_early = len(harness.tables["latest-attempts"])
    joined_early = len(harness.tables["outcome-halves"])
    harness.crash()  # the sweep queues are rebuilt from the tables
    later = max(event.occurred_at for event in events) + timedelta(hours=1)
    last = [event for i in range(12)  # jobs enough to reach every partition
            for event in attempt_events(f"late-{i}", later, 1, name="send-email",
                                        worker="worker-01")]  # fmt: skip
    run(harness, [CODEC.encode(event) for event in last])
    assert ended_early > 0 and joined_early > 0
    assert set(harness.tables["latest-attempts"]) == {f"late-{i}" for i in range(12)}
    assert all(row["t"] >= later.timestamp() * 1000 for row in
               harness.tables["outcome-halves"].values())  # fmt: skip


def test_a_half_waits_for_its_partner_however_much_event_time_passes_meanwhile() -> None:
    """In a catch-up one concurrency partition can release many minutes of event time before
    another releases the partner of a half it sent: the half must still be there."""
    harness = Harness(ProcessorSettings(embedding_model="model-a", horizon_ms=1_000))
    counts = harness.topology.counts

    def end(job: str, at_ms: int) -> AttemptEdge:
        return AttemptEdge(at_ms, job, "send-email", 1, "w1", JobEventType.COMPLETED, True, 0)

    def send(*items: Count) -> None:
        harness.sink.send(counts, None, encode(Counts(items)), partition=0)

    send(Count(end("early", 10), Dimension.WORKER, 1))
    for i in range(1, 50):  # an hour of event time, joined meanwhile
        later = end(f"later-{i}", i * 60_000)
        send(Count(later, Dimension.WORKER, 1))
        send(Count(later, Dimension.JOB_NAME, 1))
    send(Count(end("early", 10), Dimension.JOB_NAME, 1))
    asyncio.run(harness.run())
    assert {outcome.job_id for outcome in harness.outcomes()} >= {"early", "later-1"}
    assert len({outcome.job_id for outcome in harness.outcomes()}) == 50


def test_one_event_far_in_the_future_neither_holds_back_nor_drops_later_outcomes() -> None:
    """All traffic on one partition (the others idle): a job whose events claim to be 12 hours
    ahead of their records' timestamps must not move the partition's event time on (the
    later outcomes would all be late, and dropped past the horizon), nor wait 12 hours to be
    counted while every record after it stays unacknowledged."""
    settings = ProcessorSettings(embedding_model="model-a", horizon_ms=60_000, idle_after_s=0.05)
    harness = Harness(settings, batch_size=20)
    events = list(Workload(WorkloadConfig(jobs=120), seed=6).events())
    middle = events[len(events) // 2].occurred_at
    future = [
        make_event(
            event_id=f"future-{kind}",
            job_id="future",
            job_name="nightly-future",
            worker="w-future",
            type=kind,
            attempt=1,
            error=None,
            will_retry=None,
            occurred_at=middle + timedelta(hours=12, seconds=second),
        )
        for second, kind in enumerate((JobEventType.ACTIVE, JobEventType.COMPLETED))
    ]
    ordered = events[: len(events) // 2] + future + events[len(events) // 2 :]
    stamps = [round(middle.timestamp() * 1000) if e.job_id == "future"
              else round(e.occurred_at.timestamp() * 1000) for e in ordered]  # fmt: skip
    harness.produce({0: [CODEC.encode(e) for e in ordered]}, timestamps={0: stamps})
    asyncio.run(harness.run())
    streamed = {(o.job_id, o.attempt): o for o in harness.outcomes()}
    assert streamed == recompute(ordered)
    late = harness.metrics.late_edges
    assert late.labels("dropped")._value.get() == 0
    assert late.labels("early")._value.get() == 4  # two edges, each on two dimensions
    assert harness.concurrency.held() == 0
    print("held when every source was read:", harness.held_at_end)
    assert harness.held_at_end < 20


def attempt_events(job: str, start: datetime, seconds: float, *, name: str, worker: str,
                   ends: bool = True) -> list[JobEvent]:  # fmt: skip
    kinds = (JobEventType.ACTIVE, JobEventType.COMPLETED) if ends else (JobEventType.ACTIVE,)
    common = {"job_id": job, "job_name": name, "worker": worker, "attempt": 1, "error": None,
              "will_retry": None}  # fmt: skip
    return [make_event(event_id=f"{job}-{kind}", type=kind, **common,
                       occurred_at=start + timedelta(seconds=seconds * index))
            for index, kind in enumerate(kinds)]  # fmt: skip


def run_by_job(harness: Harness, events: list[JobEvent]) -> None:
    """Each job's events on one source partition, as the producer keys them."""
    by_source: dict[int, list[bytes]] = {}
    for event in events:
        source = partition_of(event.job_id, harness.topology.partitions)
        by_source.setdefault(source, []).append(CODEC.encode(event))
    harness.produce(by_source)
    asyncio.run(harness.run())


def test_an_attempt_whose_end_never_comes_stops_counting_after_the_expiry() -> None:
    """An attempt started and its end was lost (the worker died unseen): an hour later it no
    longer counts as running, on its worker or for its name, and the expiry is counted. The
    stream equals the definition with the same expiry, whatever the batches."""
    expiry_ms = 60_000
    settings = ProcessorSettings(embedding_model="model-a", attempt_expiry_ms=expiry_ms)
    harness = Harness(settings, batch_size=7)
    t0 = make_event().occurred_at
    events = attempt_events("stuck", t0, 0, name="resize", worker="w1", ends=False)
    for i in range(40):  # one attempt every 5 s for 200 s, each 2 s long, on the same worker
        events += attempt_events(f"job-{i}", t0 + timedelta(seconds=5 * i + 1), 2,
                                 name="resize", worker="w1")  # fmt: skip
    events.sort(key=lambda event: event.occurred_at)
    run_by_job(harness, events)
    streamed = {(o.job_id, o.attempt): o for o in harness.outcomes()}
    assert streamed == recompute(events, expiry_ms=expiry_ms)
    on_worker = [streamed[f"job-{i}", 1].concurrent_on_worker for i in range(40)]
    assert on_worker[:11] == [2] * 11  # itself and the stuck one (ends at 3..53 s)
    assert on_worker[12:] == [1] * 28  # a minute on: itself alone (ends at 63 s and after)
    expired = harness.metrics.expired_attempts
    assert expired.labels("worker")._value.get() == expired.labels("job_name")._value.get() == 1


def test_a_hot_job_name_keeps_a_small_concurrency_row() -> None:
    """100 attempt ends a second for one job name, two minutes long: the name's row would
    remember 12,000 ends within the horizon (about 500 KB, growing with the rate); it keeps at
    most `MAX_ENDED`, and the counts still equal the definition."""
    harness = Harness(ProcessorSettings(embedding_model="model-a"), batch_size=400)
    t0 = make_event().occurred_at
    events: list[JobEvent] = []
    for i in range(12_000):
        events += attempt_events(f"job-{i:05d}-a1b2c3", t0 + timedelta(milliseconds=10 * i), 1.5,
                                 name="hot", worker=f"w{i % 20}")  # fmt: skip
    events.sort(key=lambda event: event.occurred_at)
    run_by_job(harness, events)
    streamed = {(o.job_id, o.attempt): o for o in harness.outcomes()}
    assert streamed == recompute(events)
    row = harness.tables["concurrency-keys"][dimension_key(Dimension.JOB_NAME, "hot")]
    size = len(json.dumps(row))
    print(f"the hot name's row: {len(row['e'])} ends, {size:,} bytes")
    assert len(row["e"]) <= MAX_ENDED
    assert size < 150_000
