"""The SDK producer surfaces what cannot be written as typed errors, never a raw KafkaException:
ints outside Avro's types (EncodeError, before anything is sent) and records over a size limit
(MessageTooLargeError, from librdkafka's own limit at once, from the broker's at flush)."""

from __future__ import annotations

import base64
import random
import uuid

import pytest

from jobtrail.errors import DeliveryError, EncodeError, MessageTooLargeError
from streams.admin import TopicAdmin
from streams.producer import JobEventProducer
from streams.reader import read_messages
from streams.settings import KafkaSettings
from streams.topics import TopicSpec
from tests.conftest import catalog_of
from tests.factories import make_event


def noise(size: int) -> str:
    """Text no compression codec shrinks much (base64 of random bytes)."""
    return base64.b64encode(random.Random(size).randbytes(size * 3 // 4)).decode()


@pytest.mark.parametrize("overrides", [{"attempt": 2**63}, {"max_attempts": 2**31}])
def test_out_of_range_ints_raise_encode_error_and_send_nothing(
    kafka: KafkaSettings, overrides: dict[str, object]
) -> None:
    good = make_event(event_id="good")
    with JobEventProducer(kafka) as producer:
        with pytest.raises(EncodeError, match=next(iter(overrides))):
            producer.send(make_event(**overrides))
        with pytest.raises(EncodeError):
            producer.send_all([good, make_event(**overrides)])
        assert producer.sent == 1  # the good one, queued before the bad one
    topic = catalog_of(kafka).job_events.name
    assert [m.value() for m in read_messages(kafka, topic, idle_s=2)] == [
        producer.codec.encode(good, topic)
    ]


def test_a_record_over_librdkafkas_limit_raises_message_too_large(kafka: KafkaSettings) -> None:
    huge = make_event(data=noise(1_100_000))
    with JobEventProducer(kafka) as producer:
        with pytest.raises(MessageTooLargeError) as raised:
            producer.send(huge)
        with pytest.raises(MessageTooLargeError):
            producer.send_all([huge])
        assert isinstance(raised.value, DeliveryError) and not raised.value.retryable
        producer.send(make_event())  # the producer is still usable


def test_a_record_over_the_topics_limit_raises_message_too_large_at_flush(
    kafka: KafkaSettings,
) -> None:
    small = TopicSpec(f"{kafka.topic_prefix}small-{uuid.uuid4().hex[:6]}", "job_id", "JobEvent",
                      1, 1, {"max.message.bytes": "100000"})  # fmt: skip
    admin = TopicAdmin(kafka)
    admin.create([small])
    try:
        producer = JobEventProducer(kafka, topic=small.name).start()
        producer.send(make_event(data=noise(300_000)))
        with pytest.raises(MessageTooLargeError, match="size limit"):
            producer.flush(30)
        producer.close()
    finally:
        admin.delete([small.name])
