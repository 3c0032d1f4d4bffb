"""No commit past an undelivered output: the broker stops answering for longer than the outputs'
delivery timeout while the processors run, then comes back; the restarted worker is then killed
(-9) right after its first commit. Nothing may be lost: every vectorize request, attempt outcome
and dead letter the records call for is delivered, each copy the same, under either guarantee;
under exactly_once each is delivered once (read committed: the outputs of what was not committed
were in transactions that were aborted).

The broker is the test's own (infra/kafka.sh in a directory of its own, on free ports), stopped
with SIGSTOP: it keeps its data and its sockets, and answers nothing, as a hung or partitioned
broker does.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from processors.faust_workarounds import committed_offsets
from processors.fingerprint import fingerprint
from processors.outcomes import recompute
from schemas.derived import decode_vectorize_request
from streams.admin import TopicAdmin
from streams.demo.workload import Workload, WorkloadConfig
from streams.dlq import read_dead_letter
from streams.producer import JobEventProducer
from streams.reader import read_messages
from streams.settings import KafkaSettings
from tests.conftest import REPO_ROOT, catalog_of
from tests.integration.test_processors import (
    assert_each_once,
    delivered_outcomes,
    free_port,
    log_tail,
    records,
    scraped,
    send_poison,
    worker,
)

DELIVERY_TIMEOUT_MS = 3_000
OUTAGE_S = 10  # well past the delivery timeout


@dataclass(frozen=True)
class Broker:
    bootstrap: str
    pid: int


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A single-node Kafka of the test's own, sharing the jars of the project's local one."""
    shared = Path(os.environ.get("JOBTRAIL_INFRA_DIR", REPO_ROOT / ".infra-data")) / "kafka"
    if not (shared / "libs" / ".stamp").exists():
        pytest.fail("the Kafka jars are not installed: run `infra/kafka.sh install`")
    infra = tmp_path / "infra"
    (infra / "kafka").mkdir(parents=True)
    (infra / "kafka" / "libs").symlink_to(shared / "libs")
    port = free_port()
    env = {**os.environ, "JOBTRAIL_INFRA_DIR": str(infra), "JOBTRAIL_KAFKA_PORT": str(port),
           "JOBTRAIL_KAFKA_CONTROLLER_PORT": str(free_port()),
           "JOBTRAIL_KAFKA_SASL_PORT": str(free_port())}  # fmt: skip
    script = str(REPO_ROOT / "infra/kafka.sh")
    subprocess.run([script, "start"], env=env, check=True, timeout=300)
    try:
        pid = int((infra / "kafka" / "kafka.pid").read_text())
        yield Broker(f"127.0.0.1:{port}", pid)
    finally:
        os.kill(pid, signal.SIGCONT)  # a stopped process cannot take its SIGTERM
        subprocess.run([script, "stop"], env=env, check=False, timeout=120)


def kill_right_after_a_commit(
    kafka: KafkaSettings, topic: str, process: subprocess.Popen[bytes], data_dir: Path,
    *, may_stop: bool = False,
) -> None:  # fmt: skip
    """SIGKILLs `process` as soon as the group's committed offsets of `topic` move (`may_stop`:
    unless it stops first)."""
    before = committed_offsets(kafka, topic)
    deadline = time.monotonic() + 180
    while committed_offsets(kafka, topic) == before:
        if may_stop and process.poll() is not None:
            return
        assert process.poll() is None and time.monotonic() < deadline, log_tail(data_dir)
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()


def outage_mid_stream(
    broker: Broker, kafka: KafkaSettings, tmp_path: Path, env: dict[str, str], guarantee: str
) -> None:
    """A worker runs; the broker stops answering for `OUTAGE_S`, then comes back."""
    port = free_port()
    first = worker(kafka, tmp_path, metrics_port=port, extra_env=env)
    topic = catalog_of(kafka).job_events.name
    try:
        deadline = time.monotonic() + 180
        while scraped(port, f'jobtrail_processor_events_in_total{{topic="{topic}"}}') < 2_000:
            assert first.poll() is None and time.monotonic() < deadline, log_tail(tmp_path)
            time.sleep(0.05)
        os.kill(broker.pid, signal.SIGSTOP)
        time.sleep(OUTAGE_S)
        os.kill(broker.pid, signal.SIGCONT)
        if guarantee == "exactly_once":
            # The outputs go through Faust's transactional producers, which retry through an
            # outage this short: the worker may stop (an output past its timeout) or go on. If
            # it goes on, it is killed right after its next commit, mid-backlog.
            kill_right_after_a_commit(kafka, topic, first, tmp_path, may_stop=True)
            return
        # The worker found outputs undelivered: it must stop rather than commit past them.
        # (Whether it stops or not, the proof is in the test: what reached the topics.)
        try:
            first.wait(timeout=240)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker went on after losing outputs:\n{log_tail(tmp_path)}")
        assert first.returncode != 0, "a worker that lost outputs must not exit as if all is well"
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_a_broker_outage_past_the_delivery_timeout_loses_no_output(
    own_broker: Broker, tmp_path: Path, guarantee: str
) -> None:
    kafka = KafkaSettings(bootstrap_servers=own_broker.bootstrap, connect_timeout_s=15,
                          topic_prefix=f"test-{uuid.uuid4().hex[:10]}.")  # fmt: skip
    catalog = catalog_of(kafka)
    TopicAdmin(kafka).create(catalog.all())
    events = iter(Workload(WorkloadConfig(jobs=None, events=15_000), seed=8).events())
    sent = list(itertools.islice(events, 5_000))
    with JobEventProducer(kafka) as producer:
        producer.send_all(sent)
        producer.flush()
        expected_dead = send_poison(kafka)  # dead letters are outputs too
        sent += events
        producer.send_all(sent[5_000:])

    env = {"JOBTRAIL_PRODUCER_DELIVERY_TIMEOUT_MS": str(DELIVERY_TIMEOUT_MS),
           "JOBTRAIL_PROCESSORS_PROCESSING_GUARANTEE": guarantee}  # fmt: skip
    outage_mid_stream(own_broker, kafka, tmp_path, env, guarantee)
    # Restarted, as a supervisor would, and killed (-9) right after its first commit: what it
    # committed must be delivered, what it sent past that is read again.
    restarted = worker(kafka, tmp_path, extra_env=env)
    try:
        kill_right_after_a_commit(kafka, catalog.job_events.name, restarted, tmp_path)
    finally:
        if restarted.poll() is None:
            restarted.kill()
            restarted.wait()
    last = worker(kafka, tmp_path, idle_stop_s=6, extra_env=env)
    assert last.wait(timeout=600) == 0, log_tail(tmp_path)

    streamed, total = delivered_outcomes(kafka)
    assert streamed == recompute(sent)
    requested = Counter(
        decode_vectorize_request(value).fingerprint
        for value in records(kafka, catalog.vectorize_requests.name)
    )
    errors = {fingerprint(e.error).sha256 for e in sent if e.error is not None}
    assert set(requested) == errors
    dlq = read_messages(kafka, catalog.job_events_dlq.name, idle_s=3)
    letters = [read_dead_letter(message) for message in dlq]
    by_source = {(letter.partition, letter.offset): letter.reason for letter in letters}
    assert Counter(by_source.values()) == expected_dead
    print(f"outcomes: {total} delivered for {len(streamed)} attempts; requests: "
          f"{sum(requested.values())} for {len(errors)} errors; dead letters: {len(letters)} "
          f"for {len(by_source)} poison records")  # fmt: skip
    if guarantee == "exactly_once":
        assert_each_once(total, len(streamed), requested)
        assert len(letters) == len(by_source), "a dead letter came twice"
