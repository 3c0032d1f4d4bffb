"""The one place where settings become librdkafka configuration dictionaries."""

from __future__ import annotations

from typing import Any

from streams.settings import KafkaSettings, ProducerSettings


def common_config(kafka: KafkaSettings, role: str) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "client.id": f"{kafka.client_id}-{role}",
        "security.protocol": kafka.security_protocol,
    }
    if kafka.sasl_mechanism:
        config["sasl.mechanism"] = kafka.sasl_mechanism
    if kafka.sasl_username:
        config["sasl.username"] = kafka.sasl_username
    if kafka.sasl_password is not None:
        config["sasl.password"] = kafka.sasl_password.get_secret_value()
    for option, value in (("ssl.ca.location", kafka.ssl_ca_location),
                          ("ssl.certificate.location", kafka.ssl_certificate_location),
                          ("ssl.key.location", kafka.ssl_key_location)):  # fmt: skip
        if value:
            config[option] = value
    return config


def producer_config(kafka: KafkaSettings, producer: ProducerSettings) -> dict[str, Any]:
    return {
        **common_config(kafka, "producer"),
        # Idempotence implies acks=all and bounded in-flight requests: no duplicates, no reorder
        # within a partition, even across retries.
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": producer.linger_ms,
        "batch.size": producer.batch_size,
        "compression.type": producer.compression,
        "queue.buffering.max.messages": producer.max_buffered_messages,
        "queue.buffering.max.kbytes": producer.max_buffered_kbytes,
        "delivery.timeout.ms": producer.delivery_timeout_ms,
        # Default partitioner of the Java client, so every language agrees on key -> partition.
        "partitioner": "murmur2_random",
    }


def consumer_config(kafka: KafkaSettings, group_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        **common_config(kafka, "consumer"),
        "group.id": group_id,
        "enable.auto.commit": False,  # offsets are committed only after effects are durable
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        **overrides,
    }


def admin_config(kafka: KafkaSettings) -> dict[str, Any]:
    return common_config(kafka, "admin")
