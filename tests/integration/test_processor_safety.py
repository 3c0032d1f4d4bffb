"""Issue 9 in the processors, against the real broker: no message stalls or corrupts them.

- An event dated 2100 is dead-lettered (event_time_in_future) before event-time tracking: every
  other attempt outcome equals the recomputation.
- A near-1 MB record whose dead letter exceeds the message limit: a truncated dead letter with
  `jobtrail.dlq.truncated`, the rest flows, the partition is committed past it.
- A record that makes a processing step raise is dead-lettered once (handler_error), no crash loop.
- event_id idempotency: events re-sent with the same event_id (at once, much later in the log,
  from a second producer) count once in fingerprint counts and attempt outcomes.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import textwrap
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer

from processors.faust_workarounds import committed_offsets
from processors.fingerprint import fingerprint
from processors.outcomes import recompute
from processors.topology import app_id
from schemas.codec import SingleObjectCodec
from schemas.derived import decode_attempt_outcome, decode_vectorize_request
from schemas.job_event import JobError, JobEvent, JobEventType
from streams.demo.workload import Workload, WorkloadConfig
from streams.dlq import read_dead_letter
from streams.producer import JobEventProducer
from streams.reader import read_messages
from streams.settings import KafkaSettings
from tests.conftest import catalog_of
from tests.factories import make_event
from tests.integration.test_processors import (
    log_events,
    processors_kafka,
    records,
    run_until_idle,
)

__all__ = ["processors_kafka"]  # the fixture, used by name

INJECTED = "jobtrail-test: this message makes fingerprinting raise"


def fault_injection(directory: Path) -> dict[str, str]:
    """Environment for a worker whose fingerprinting raises on one marked message: a bug the
    contract cannot foresee, in the worker's real code path (a sitecustomize wraps it)."""
    directory.mkdir(exist_ok=True)
    (directory / "sitecustomize.py").write_text(
        textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, os.getcwd())
        import processors.ingest as ingest
        _real = ingest.fingerprint
        def _fingerprint(error):
            if error.message == {INJECTED!r}:
                raise RuntimeError("injected fault")
            return _real(error)
        ingest.fingerprint = _fingerprint
    """)
    )
    return {"PYTHONPATH": str(directory)}


def job_in_2100() -> list[JobEvent]:
    at = datetime(2100, 1, 1, tzinfo=UTC)
    base = make_event(job_id="job-2100", error=None, will_retry=None, attempt=1)
    return [
        replace(base, event_id=f"2100-{kind}", type=kind, occurred_at=at + timedelta(seconds=i))
        for i, kind in enumerate([JobEventType.QUEUED, JobEventType.ACTIVE, JobEventType.COMPLETED])
    ]


def job_12_hours_ahead() -> list[JobEvent]:
    """A job whose clock is 12 hours fast (within the contract's skew, so accepted), on a worker
    and job name of its own: its outcome is exact, and it must neither hold back nor poison the
    event time of the rest (processors.stages.ingest, processors.stages.concurrency)."""
    at = datetime.now(UTC) + timedelta(hours=12)
    base = make_event(job_id="job-fast-clock", job_name="fast-clock", worker="w-fast-clock",
                      error=None, will_retry=None, attempt=1)  # fmt: skip
    return [
        replace(base, event_id=f"fast-{kind}", type=kind, occurred_at=at + timedelta(seconds=i))
        for i, kind in enumerate([JobEventType.ACTIVE, JobEventType.COMPLETED])
    ]


def near_1_mb() -> tuple[bytes, JobEvent]:
    """A valid Avro event of about 1,040,000 bytes (under the topic's 1,048,588): its data breaks
    the contract's size limit, and its dead letter exceeds the processors' 1,000,000."""
    noise = base64.b64encode(random.Random(3).randbytes(780_000)).decode()  # incompressible
    event = make_event(job_id="job-huge", event_id="huge", type=JobEventType.QUEUED, error=None,
                       data=json.dumps({"blob": noise}))  # fmt: skip
    return SingleObjectCodec().encode(event), event


@pytest.mark.timeout(600)
def test_future_event_huge_record_and_handler_error_are_dead_lettered_the_rest_flows(
    processors_kafka: KafkaSettings, tmp_path: Path
) -> None:
    kafka = processors_kafka
    catalog = catalog_of(kafka)
    events = Workload(WorkloadConfig(jobs=None, events=6000), seed=11).events()
    huge, huge_event = near_1_mb()
    injected = make_event(job_id="job-injected", event_id="injected", attempt=1,
                          error=JobError("Boom", INJECTED))  # fmt: skip
    with JobEventProducer(kafka) as producer:
        producer.send_all(itertools.islice(events, 3000))
        producer.send_all(job_in_2100())
        producer.send_all(job_12_hours_ahead())
        producer.send(injected)
        producer.flush()
        raw = Producer({"bootstrap.servers": kafka.bootstrap_servers,
                        "message.max.bytes": 1_048_000})  # fmt: skip
        raw.produce(catalog.job_events.name, huge, huge_event.job_id.encode())
        assert raw.flush(30) == 0
        producer.send_all(events)  # the rest after them, on every partition

    run_until_idle(kafka, tmp_path, extra_env=fault_injection(tmp_path / "inject"))

    letters = [read_dead_letter(m) for m in read_messages(kafka, catalog.job_events_dlq.name)]
    by_reason = Counter(letter.reason for letter in letters)
    assert by_reason == {"event_time_in_future": 3, "oversized_field": 1, "handler_error": 1}
    [truncated] = [letter for letter in letters if letter.reason == "oversized_field"]
    assert truncated.truncated_from == len(huge) > 1_000_000
    assert truncated.value and len(truncated.value) < 1_000_000
    assert huge.startswith(truncated.value)
    [failed] = [letter for letter in letters if letter.reason == "handler_error"]
    assert "injected fault" in failed.detail and failed.key == b"job-injected"

    # The group committed past every poison record, and every record after them.
    ends: Counter[int] = Counter()
    for message in read_messages(kafka, catalog.job_events.name, idle_s=3):
        ends[message.partition() or 0] += 1
    committed = {
        p: offset or 0 for p, offset in committed_offsets(kafka, catalog.job_events.name).items()
    }
    assert all(committed[letter.partition] > letter.offset + 100 for letter in letters)
    assert all(committed[p] == ends[p] for p in ends)

    refused = {"job-2100", "job-injected", "job-huge"}
    others = [event for event in log_events(kafka) if event.job_id not in refused]
    expected = recompute(others)
    streamed = {
        (outcome.job_id, outcome.attempt): outcome
        for outcome in map(decode_attempt_outcome, records(kafka, catalog.attempt_outcomes.name))
    }
    assert len(expected) > 500
    assert ("job-fast-clock", 1) in expected
    assert streamed == expected


def fingerprint_counts(kafka: KafkaSettings) -> dict[str, int]:
    """The dedup table's count per fingerprint: the last row of each key in its changelog."""
    rows: dict[str, int] = {}
    for message in read_messages(kafka, f"{app_id(kafka)}-fingerprints-changelog", idle_s=3):
        key = json.loads(message.key() or b"null")
        value = message.value()
        if value is None:
            rows.pop(key, None)
        else:
            rows[key] = json.loads(value)["count"]
    return rows


@pytest.mark.timeout(900)
def test_events_resent_with_the_same_event_id_count_once(
    processors_kafka: KafkaSettings, tmp_path: Path
) -> None:
    kafka = processors_kafka
    catalog = catalog_of(kafka)
    distinct = list(Workload(WorkloadConfig(jobs=None, events=20_000), seed=21).events())
    rng = random.Random(8)
    resent = rng.sample(range(len(distinct)), len(distinct) // 20)  # 5%
    at_once = set(resent[0::3])
    later = [distinct[index] for index in resent[1::3]]
    after_restart = [distinct[index] for index in resent[2::3]]

    with JobEventProducer(kafka) as producer:
        for index, event in enumerate(distinct):
            producer.send(event)
            if index in at_once:
                producer.send(event)  # a retry after a DeliveryError that was not one
        producer.send_all(later)  # a bridge that read its source twice: far later in the log
    with JobEventProducer(kafka) as restarted:  # a producer restart replaying what it had
        restarted.send_all(after_restart)

    run_until_idle(kafka, tmp_path)

    logged = log_events(kafka)
    assert len(logged) == len(distinct) + len(resent)
    ids: set[str] = set()
    first_of_each = []
    for event in logged:
        if event.event_id not in ids:
            ids.add(event.event_id)
            first_of_each.append(event)
    assert len(first_of_each) == len(distinct)

    errors = [fingerprint(e.error).sha256 for e in first_of_each if e.error is not None]
    requests = [
        decode_vectorize_request(v) for v in records(kafka, catalog.vectorize_requests.name)
    ]
    assert Counter(request.fingerprint for request in requests) == Counter(set(errors))
    assert fingerprint_counts(kafka) == Counter(errors)

    streamed = {
        (outcome.job_id, outcome.attempt): outcome
        for outcome in map(decode_attempt_outcome, records(kafka, catalog.attempt_outcomes.name))
    }
    expected = recompute(first_of_each)
    assert len(expected) > 2000
    assert streamed == expected
