"""The Faust processors against the real broker: one vectorize request per distinct error, attempt
outcomes equal to the pure recomputation, poison records in the DLQ, and a kill -9 mid-stream."""

from __future__ import annotations

import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer

from processors.faust_workarounds import committed_offsets
from processors.fingerprint import fingerprint
from processors.outcomes import recompute
from processors.records import Sightings, decode
from processors.topology import internal_topic_names
from processors.validation import violation
from schemas.codec import SingleObjectCodec
from schemas.derived import AttemptOutcome, decode_attempt_outcome, decode_vectorize_request
from schemas.job_event import JobError, JobEvent, JobEventType
from streams.admin import TopicAdmin
from streams.demo.workload import Workload, WorkloadConfig
from streams.dlq import read_dead_letter
from streams.producer import JobEventProducer
from streams.reader import read_messages
from streams.settings import KafkaSettings
from tests.conftest import REPO_ROOT, catalog_of
from tests.factories import make_event

JOBTRAIL = [sys.executable, "-m", "jobtrail.cli"]


@pytest.fixture
def processors_kafka(kafka: KafkaSettings) -> Iterator[KafkaSettings]:
    """The test's catalog plus, afterwards, the internal and changelog topics Faust made."""
    yield kafka
    admin = TopicAdmin(kafka)
    mine = [name for name in admin.metadata().topics if name.startswith(kafka.topic_prefix)]
    if not os.environ.get("KEEP_TOPICS"):  # KEEP_TOPICS=1 keeps them for a post-mortem
        admin.delete(mine)


def worker(
    kafka: KafkaSettings,
    data_dir: Path,
    *,
    idle_stop_s: float = 0,
    model: str = "model-a",
    metrics_port: int = 0,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **(extra_env or {}),
        "JOBTRAIL_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "JOBTRAIL_TOPIC_PREFIX": kafka.topic_prefix,
        "JOBTRAIL_PROCESSORS_DATA_DIR": str(data_dir),
        "JOBTRAIL_PROCESSORS_EMBEDDING_MODEL": model,
        "JOBTRAIL_PROCESSORS_IDLE_AFTER_S": "2",
        "JOBTRAIL_PROCESSORS_LOG_LEVEL": "info",
    }
    command = [*JOBTRAIL, "processors", "--metrics-port", str(metrics_port),
               "--idle-stop-s", str(idle_stop_s)]  # fmt: skip
    log = data_dir / f"worker-{time.time_ns()}.log"
    with log.open("wb") as sink:  # the child keeps its own descriptor
        return subprocess.Popen(command, env=env, cwd=REPO_ROOT, stderr=sink)


def log_tail(data_dir: Path, lines: int = 80) -> str:
    """The end of the newest worker log: what a failure message needs to be diagnosed."""
    logs = sorted(data_dir.glob("worker-*.log"))
    return "\n".join(logs[-1].read_text(errors="replace").splitlines()[-lines:]) if logs else ""


def run_until_idle(
    kafka: KafkaSettings,
    data_dir: Path,
    model: str = "model-a",
    extra_env: dict[str, str] | None = None,
) -> None:
    process = worker(kafka, data_dir, idle_stop_s=6, model=model, extra_env=extra_env)
    try:
        returncode = process.wait(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"the worker did not stop once idle; its log ends:\n{log_tail(data_dir)}")
    assert returncode == 0, log_tail(data_dir)


def records(kafka: KafkaSettings, topic: str, idle_s: float = 3) -> list[bytes]:
    return [message.value() or b"" for message in read_messages(kafka, topic, idle_s=idle_s)]


def delivered_outcomes(kafka: KafkaSettings) -> tuple[dict[tuple[str, int], AttemptOutcome], int]:
    """The attempt outcomes on the topic by attempt, and how many records carried them. At least
    once an outcome can come twice (a restart recounts what was not committed): every copy must
    be the same value."""
    copies: dict[tuple[str, int], set[AttemptOutcome]] = {}
    values = records(kafka, catalog_of(kafka).attempt_outcomes.name)
    for value in values:
        outcome = decode_attempt_outcome(value)
        copies.setdefault((outcome.job_id, outcome.attempt), set()).add(outcome)
    differing = {key: same for key, same in copies.items() if len(same) > 1}
    example = next(iter(differing.items()), None)
    assert not differing, f"{len(differing)} attempts got different outcomes, e.g. {example}"
    return {key: next(iter(same)) for key, same in copies.items()}, len(values)


def assert_each_once(total: int, attempts: int, requested: Counter[str]) -> None:
    """Exactly once: no outcome record beyond one per attempt, no vectorize request twice."""
    assert total == attempts, f"{total - attempts} outcomes came twice"
    assert max(requested.values()) == 1, "a vectorize request came twice"


def log_events(kafka: KafkaSettings) -> list[JobEvent]:
    """Every decodable, valid event of the job-events log, each partition in offset order."""
    codec = SingleObjectCodec()
    events = []
    for message in read_messages(kafka, catalog_of(kafka).job_events.name, idle_s=3):
        try:
            event = codec.decode(message.value() or b"")
        except Exception:  # poison: the DLQ's business, not the reference's
            continue
        if violation(event) is None:
            events.append(event)
    return events


POISON: list[tuple[bytes | None, str]] = [
    (b"not avro at all", "undecodable"),
    (b"\xc3\x01" + b"\x00" * 8 + b"garbage", "unknown_schema"),
]


def send_poison(kafka: KafkaSettings) -> dict[str, int]:
    """Bad records of every kind, spread over the partitions, while good ones flow around them."""
    codec = SingleObjectCodec()
    bad = [
        *POISON,
        (codec.encode(make_event(job_id="")), "missing_job_id"),
        (codec.encode(make_event(attempt=0)), "attempt_below_1"),
        (codec.encode(make_event(data="x" * 300_000)), "oversized_field"),
        (codec.encode(make_event(type=JobEventType.COMPLETED)), "error_on_wrong_type"),
    ]
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    for index, (value, _) in enumerate(bad):
        producer.produce(catalog_of(kafka).job_events.name, value, f"poison-{index}".encode())
    producer.flush(10)
    return Counter(reason for _, reason in bad)


@pytest.mark.timeout(900)
def test_one_request_per_distinct_error_outcomes_equal_recomputation_and_poison_in_the_dlq(
    processors_kafka: KafkaSettings, tmp_path: Path
) -> None:
    kafka = processors_kafka
    catalog = catalog_of(kafka)
    events = Workload(WorkloadConfig(jobs=None, events=100_000), seed=7).events()
    with JobEventProducer(kafka) as producer:
        producer.send_all(itertools.islice(events, 50_000))
        producer.flush()
        expected_dead = send_poison(kafka)  # mid-stream: the rest must flow around them
        producer.send_all(events)

    run_until_idle(kafka, tmp_path)

    logged = log_events(kafka)
    assert len(logged) == 100_000
    failed = [event.error for event in logged if event.error is not None]
    distinct = {fingerprint(error).sha256 for error in failed}
    requests = [
        decode_vectorize_request(value) for value in records(kafka, catalog.vectorize_requests.name)
    ]
    per_fingerprint = Counter(request.fingerprint for request in requests)
    print(f"{len(failed)} failed events, {len(distinct)} distinct fingerprints")
    assert set(per_fingerprint) == distinct
    assert max(per_fingerprint.values()) == 1
    assert {request.model for request in requests} == {"model-a"}

    outcomes = [
        decode_attempt_outcome(value) for value in records(kafka, catalog.attempt_outcomes.name)
    ]
    streamed = {(outcome.job_id, outcome.attempt): outcome for outcome in outcomes}
    assert len(streamed) == len(outcomes), "an attempt's outcome was emitted twice"
    expected = recompute(logged)
    assert len(expected) > 10_000
    assert streamed == expected

    letters = [
        read_dead_letter(message)
        for message in read_messages(kafka, catalog.job_events_dlq.name, idle_s=3)
    ]
    assert Counter(letter.reason for letter in letters) == expected_dead
    assert all(letter.topic == catalog.job_events.name and letter.offset >= 0 for letter in letters)
    assert {letter.value for letter in letters} >= {value for value, _ in POISON}


def distinct_errors(count: int, repeats: int, seed: int) -> list[JobEvent]:
    """`count` distinct errors (by type), each failing `repeats` times, shuffled over time."""
    rng = random.Random(seed)
    order = [index for index in range(count) for _ in range(repeats)]
    rng.shuffle(order)
    start = make_event().occurred_at
    return [
        make_event(
            event_id=str(uuid.UUID(int=rng.getrandbits(128))),
            job_id=f"job-{position}",
            attempt=1,
            occurred_at=start + timedelta(milliseconds=position),
            error=JobError(f"Failure{chr(65 + index % 26)}{index}Error", "it broke", None),
        )
        for position, index in enumerate(order)
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scraped(port: int, sample: str) -> float:
    """One sample of the worker's /metrics; 0 while it does not answer (still starting)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as page:
            text = page.read().decode()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


def uncommitted_sightings(kafka: KafkaSettings, topic: str) -> int:
    """Sightings in the records of `topic` past the processors' committed offsets (each record
    holds a batch of them): what a restart will read again."""
    committed = committed_offsets(kafka, topic)
    total = 0
    for message in read_messages(kafka, topic, idle_s=2):
        if message.offset() >= (committed[message.partition() or 0] or 0):
            record = decode(message.value())
            total += len(record.items) if isinstance(record, Sightings) else 0  # or a Sweep
    return total


@pytest.mark.timeout(900)
def test_kill_9_mid_stream_recovers_the_table_and_bounds_duplicates(
    processors_kafka: KafkaSettings, tmp_path: Path
) -> None:
    kafka = processors_kafka
    catalog = catalog_of(kafka)
    distinct, repeats = 1500, 10
    with JobEventProducer(kafka) as producer:
        producer.send_all(distinct_errors(distinct, repeats, seed=5))

    port = free_port()
    process = worker(kafka, tmp_path, metrics_port=port)
    requests_topic = catalog.vectorize_requests.name
    deadline = time.monotonic() + 300
    sightings = internal_topic_names(kafka)["sightings"]
    while scraped(port, 'jobtrail_processor_fingerprints_total{result="new"}') < distinct * 0.2:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    # Past the commit when it died: the most a restart can process twice.
    in_flight = uncommitted_sightings(kafka, sightings)
    before = len(records(kafka, requests_topic))
    assert before < distinct, "killed too late to test anything"

    run_until_idle(kafka, tmp_path)

    requests = [decode_vectorize_request(value) for value in records(kafka, requests_topic)]
    per_fingerprint = Counter(request.fingerprint for request in requests)
    duplicates = len(requests) - len(per_fingerprint)
    print(f"killed after {before} requests; {duplicates} duplicate requests after the restart,"
          f" bound (sightings past the commit at the kill): {in_flight}")  # fmt: skip
    assert len(per_fingerprint) == distinct
    assert duplicates <= in_flight

    # Attempt outcomes: none lost and none different, whatever the kill cut in half. (A copy of
    # an outcome the killed worker had sent but not committed may come again: the same value.)
    streamed, _ = delivered_outcomes(kafka)
    assert streamed == recompute(log_events(kafka))

    # A newly configured model gets every known fingerprint requested, exactly once.
    run_until_idle(kafka, tmp_path, model="model-b")
    again = [decode_vectorize_request(value) for value in records(kafka, requests_topic)]
    new_model = Counter(request.fingerprint for request in again if request.model == "model-b")
    assert set(new_model) == set(per_fingerprint)
    assert max(new_model.values()) == 1
