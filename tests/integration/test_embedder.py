"""The embedder through the real broker, with the OpenAI provider against a real server process
(tests/fake_openai.py): every request ends in exactly one vector through 429s, 500s, slow answers,
an outage and a kill -9 mid-batch; empty texts go to the DLQ."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from processors.embedding.embedder import Embedder
from processors.embedding.metrics import EmbedderMetrics
from processors.embedding.openai_provider import OpenAIProvider
from processors.embedding.settings import EmbedderSettings
from schemas.derived import VectorizeRequest, decode_error_vector, encode_vectorize_request
from streams.admin import TopicAdmin
from streams.dlq import read_dead_letter
from streams.reader import read_messages
from streams.settings import KafkaSettings
from tests.conftest import REPO_ROOT, catalog_of
from tests.fake_openai import REFUSED_MARK, fake_vector
from tests.integration.test_openai_provider import control, fake_openai, stats

__all__ = ["fake_openai"]  # the fixture, shared
MODEL = "text-embedding-3-small"


@pytest.fixture
def embed_kafka(kafka: KafkaSettings) -> Iterator[KafkaSettings]:
    yield kafka
    admin = TopicAdmin(kafka)
    admin.delete(name for name in admin.metadata().topics if name.startswith(kafka.topic_prefix))


def own_metrics() -> EmbedderMetrics:
    """Metrics in a registry of their own: several embedders run in one test process."""
    return EmbedderMetrics.create(CollectorRegistry())


def send_requests(kafka: KafkaSettings, templates: list[tuple[int, str]]) -> None:
    """Requests whose fingerprint is the index (repeat an index to repeat a request)."""
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    for index, template in templates:
        fingerprint = f"{index:064x}"
        request = VectorizeRequest(fingerprint, template, template, MODEL, index)
        producer.produce(catalog_of(kafka).vectorize_requests.name,
                         encode_vectorize_request(request), fingerprint.encode())  # fmt: skip
    producer.flush(10)


def vectors(kafka: KafkaSettings) -> list[tuple[str, list[float]]]:
    topic = catalog_of(kafka).error_vectors.name
    decoded = [decode_error_vector(m.value()) for m in read_messages(kafka, topic, idle_s=2)]
    return [(vector.fingerprint, list(vector.vector)) for vector in decoded]


def embedder_process(kafka: KafkaSettings, base: str, batch_size: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "JOBTRAIL_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "JOBTRAIL_TOPIC_PREFIX": kafka.topic_prefix,
        "JOBTRAIL_EMBED_PROVIDER": "openai",
        "JOBTRAIL_EMBED_MODEL": MODEL,
        "JOBTRAIL_EMBED_OPENAI_BASE_URL": base + "/v1",
        "JOBTRAIL_EMBED_OPENAI_TIMEOUT_S": "5",
        "JOBTRAIL_EMBED_BATCH_SIZE": str(batch_size),
        "JOBTRAIL_EMBED_FETCH_BATCHES": "1",  # rounds of one batch: the bounds below count them
    }
    command = [sys.executable, "-m", "jobtrail.cli", "embed", "--metrics-port", "0",
               "--idle-stop-s", "20"]  # fmt: skip
    return subprocess.Popen(command, env=env, cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)


def test_every_request_ends_in_one_vector_through_failures_and_an_outage(
    embed_kafka: KafkaSettings, fake_openai: str
) -> None:
    kafka = embed_kafka
    templates = [
        f"TimeoutError: call <*> timed out after <duration> (variant {i})" for i in range(200)
    ]
    numbered = list(enumerate(templates))
    send_requests(kafka, [*numbered, (200, "   "), *numbered[:20]])  # an empty one, repeats
    control(fake_openai, script=["429", "500", "slow", "ok", "429"])
    settings = EmbedderSettings(provider="openai", model=MODEL, batch_size=32, fetch_batches=1,
                                batch_wait_s=0.2,
                                breaker_failures=1, breaker_open_s=0.5)  # fmt: skip
    provider = OpenAIProvider(MODEL, api_key=None, base_url=fake_openai + "/v1", timeout_s=1.0,
                              max_retries=1)  # fmt: skip
    control(fake_openai, down=True)  # down at start: the breaker pauses, nothing is lost
    embedder = Embedder(provider, kafka, settings, own_metrics()).start()
    runner = threading.Thread(target=embedder.run, kwargs={"idle_stop_s": 3})
    runner.start()
    time.sleep(4)
    down_answers = stats(fake_openai)["answers"].get("503", 0)
    control(fake_openai, down=False)
    runner.join(120)
    embedder.close()
    # Paused, not hammering: a handful of calls in 4 s of outage (the breaker backs off).
    assert 1 <= down_answers <= 12

    got = vectors(kafka)
    per_fingerprint = Counter(fingerprint for fingerprint, _ in got)
    assert len(per_fingerprint) == 200 and max(per_fingerprint.values()) == 1
    for fingerprint, vector in got:
        assert vector == pytest.approx(fake_vector(templates[int(fingerprint, 16)], 8), abs=1e-6)
    letters = [read_dead_letter(m) for m in read_messages(
        kafka, catalog_of(kafka).vectorize_requests_dlq.name, idle_s=2)]  # fmt: skip
    assert [letter.reason for letter in letters] == ["empty_text"]


def test_an_embedder_killed_mid_batch_loses_nothing(
    embed_kafka: KafkaSettings, fake_openai: str, tmp_path: Path
) -> None:
    kafka = embed_kafka
    templates = [f"KeyError: <*> in handler (variant {i})" for i in range(300)]
    send_requests(kafka, list(enumerate(templates)))
    control(fake_openai, script=["ok", "ok", "slow", "slow", "slow"])
    first = embedder_process(kafka, fake_openai, batch_size=50)
    deadline = time.monotonic() + 60
    while stats(fake_openai)["answers"].get("slow", 0) < 1:  # a batch is in flight
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate()
    before = len(vectors(kafka))
    assert before < 300

    second = embedder_process(kafka, fake_openai, batch_size=50)
    second.communicate(timeout=120)
    assert second.returncode == 0
    per_fingerprint = Counter(fingerprint for fingerprint, _ in vectors(kafka))
    total = sum(per_fingerprint.values())
    print(f"killed with {before} vectors written; after the restart {total} vectors for"
          f" {len(per_fingerprint)} fingerprints")  # fmt: skip
    assert len(per_fingerprint) == 300


def test_embedders_of_one_model_share_the_partitions(
    embed_kafka: KafkaSettings, fake_openai: str
) -> None:
    kafka = embed_kafka
    templates = [
        f"OSError: [Errno <num>] No space left on device (variant {i})" for i in range(400)
    ]
    send_requests(kafka, list(enumerate(templates)))
    control(fake_openai, script=["slow"] * 4)  # slow enough for both to join before the end
    workers = [embedder_process(kafka, fake_openai, batch_size=20) for _ in range(2)]
    outputs = [worker.communicate(timeout=180)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0]
    counts = [int(re.search(r"embedded (\d+) errors", out).group(1)) for out in outputs]  # type: ignore[union-attr]
    per_fingerprint = Counter(fingerprint for fingerprint, _ in vectors(kafka))
    print(f"two embedders: {counts} texts; {len(per_fingerprint)} fingerprints")
    assert len(per_fingerprint) == 400
    assert all(count > 0 for count in counts)
    # A rebalance while both join may redo a batch not yet committed: the same key and value
    # again on a compacted topic, bounded by the batches in flight.
    assert sum(per_fingerprint.values()) - 400 <= 2 * 20


def test_a_text_the_api_refuses_goes_to_the_dlq_and_the_rest_of_its_batch_is_embedded(
    embed_kafka: KafkaSettings, fake_openai: str
) -> None:
    kafka = embed_kafka
    templates = [f"PermissionError: <*> denied (variant {i})" for i in range(60)]
    templates[17] = f"PermissionError: {REFUSED_MARK} (variant 17)"
    send_requests(kafka, list(enumerate(templates)))
    settings = EmbedderSettings(provider="openai", model=MODEL, batch_size=30, fetch_batches=1,
                                batch_wait_s=0.2)  # fmt: skip
    provider = OpenAIProvider(MODEL, api_key=None, base_url=fake_openai + "/v1", timeout_s=2.0,
                              max_retries=1)  # fmt: skip
    embedder = Embedder(provider, kafka, settings, own_metrics()).start()
    try:
        embedder.run(idle_stop_s=3)
    finally:
        embedder.close()
    got = dict(vectors(kafka))
    assert sorted(int(fingerprint, 16) for fingerprint in got) == [i for i in range(60) if i != 17]
    letters = [read_dead_letter(m) for m in read_messages(
        kafka, catalog_of(kafka).vectorize_requests_dlq.name, idle_s=2)]  # fmt: skip
    assert [(letter.reason, letter.key) for letter in letters] == [
        ("provider_refused", f"{17:064x}".encode())
    ]
    assert "400" in letters[0].detail


def test_a_provider_call_longer_than_max_poll_interval_neither_crashes_nor_doubles(
    embed_kafka: KafkaSettings, fake_openai: str
) -> None:
    kafka = embed_kafka
    templates = [f"ConnectionError: <*> refused (variant {i})" for i in range(120)]
    send_requests(kafka, list(enumerate(templates)))
    # Each slow answer takes 9 s: past the 6 s max.poll.interval.ms (the broker's minimum
    # session timeout bounds it from below), once in the first batch and once in a later one.
    control(fake_openai, slow_s=9.0, script=["slow", "ok", "slow"])
    settings = EmbedderSettings(provider="openai", model=MODEL, batch_size=40, fetch_batches=1,
                                batch_wait_s=0.2, session_timeout_ms=6000,
                                max_poll_interval_ms=6000)  # fmt: skip
    provider = OpenAIProvider(MODEL, api_key=None, base_url=fake_openai + "/v1", timeout_s=20.0,
                              max_retries=1)  # fmt: skip
    embedder = Embedder(provider, kafka, settings, own_metrics()).start()
    try:
        embedder.run(idle_stop_s=4)  # returns: it did not crash on a commit
    finally:
        embedder.close()
    assert stats(fake_openai)["answers"]["slow"] == 2
    assert embedder.keepalive.keepalive_polls >= 10  # it polled while the slow calls ran
    per_fingerprint = Counter(fingerprint for fingerprint, _ in vectors(kafka))
    assert len(per_fingerprint) == 120 and max(per_fingerprint.values()) == 1
