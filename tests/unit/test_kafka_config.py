from __future__ import annotations

import pytest
from pydantic import SecretStr

from streams.kafka_config import consumer_config, producer_config
from streams.settings import KafkaSettings, ProducerSettings


def test_producer_is_idempotent_with_acks_all_and_bounded_memory() -> None:
    config = producer_config(KafkaSettings(), ProducerSettings(max_buffered_messages=1234))
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert config["queue.buffering.max.messages"] == 1234
    assert config["partitioner"] == "murmur2_random"


def test_consumers_never_auto_commit() -> None:
    config = consumer_config(KafkaSettings(), "g")
    assert config["enable.auto.commit"] is False
    assert config["group.id"] == "g"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBTRAIL_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("JOBTRAIL_TOPIC_PREFIX", "staging.")
    monkeypatch.setenv("JOBTRAIL_SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("JOBTRAIL_PRODUCER_LINGER_MS", "5")
    settings = KafkaSettings()
    assert settings.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert settings.topic_prefix == "staging."
    assert "hunter2" not in repr(settings)  # secrets never show in logs
    assert producer_config(settings, ProducerSettings())["sasl.password"] == "hunter2"
    assert ProducerSettings().linger_ms == 5


def test_secret_is_a_secret_str() -> None:
    assert isinstance(KafkaSettings(sasl_password=SecretStr("x")).sasl_password, SecretStr)
