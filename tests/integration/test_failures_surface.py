"""Failures reach the caller: an unreachable broker, a refused record, a missing topic."""

from __future__ import annotations

import socket
import time

import pytest

from jobtrail.errors import DeliveryError, KafkaUnavailableError
from streams.admin import TopicAdmin
from streams.consumer import BatchConsumer
from streams.producer import JobEventProducer
from streams.settings import KafkaSettings, ProducerSettings
from streams.topics import TopicSpec
from tests.factories import make_event


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unreachable() -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=f"127.0.0.1:{closed_port()}", connect_timeout_s=2)


@pytest.mark.parametrize(
    "connect",
    [
        lambda s: JobEventProducer(s).start(),
        lambda s: TopicAdmin(s).existing(["x"]),
        lambda s: BatchConsumer(s, "g", ["x"]).start(),
    ],
    ids=["producer", "admin", "consumer"],
)
def test_unreachable_broker_is_a_clear_error_in_bounded_time(connect: object) -> None:
    settings = unreachable()
    started = time.monotonic()
    with pytest.raises(KafkaUnavailableError, match="did not answer within 2 s"):
        connect(settings)  # type: ignore[operator]
    assert time.monotonic() - started < 6


def test_missing_topic_is_named(kafka: KafkaSettings) -> None:
    with pytest.raises(KafkaUnavailableError, match="topics apply"):
        JobEventProducer(kafka, topic=kafka.topic_prefix + "nope").start()


def test_a_record_the_broker_refuses_raises_on_flush(kafka: KafkaSettings) -> None:
    topic = kafka.topic_prefix + "small-records"
    TopicAdmin(kafka).create(
        [TopicSpec(topic, "job_id", "JobEvent", 1, 1, {"max.message.bytes": "2048"})]
    )
    producer = JobEventProducer(kafka, ProducerSettings(compression="none"), topic=topic).start()
    producer.send(make_event(job_id="small"))
    assert producer.flush(20) == 0  # accepted
    producer.send(make_event(job_id="huge", data="x" * 5000))
    with pytest.raises(DeliveryError, match="1 records failed delivery") as failure:
        producer.flush(20)
    assert "too large" in str(failure.value).lower()
    assert not failure.value.retryable
    assert producer.failed == 1 and producer.sent == 2
    producer.close()  # the failure was reported once; nothing is left to raise
    TopicAdmin(kafka).delete([topic])


def test_a_full_buffer_applies_back_pressure_instead_of_growing(kafka: KafkaSettings) -> None:
    bounded = ProducerSettings(max_buffered_messages=50, linger_ms=1)
    peak = 0
    with JobEventProducer(kafka, bounded) as producer:
        for index in range(5000):
            producer.send(make_event(event_id=str(index), job_id=f"job-{index % 97}"))
            peak = max(peak, producer.in_flight)
    # len(producer) also counts delivery events not yet served by poll(), so the peak sits a
    # little above the record bound; what matters is that it does not grow with what was sent.
    assert 40 <= peak <= 2 * 50
    assert producer.sent == 5000 and producer.failed == 0
