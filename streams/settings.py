"""Settings for the Kafka side of every component, read from `JOBTRAIL_*` environment variables.

Only `streams/kafka_config.py` turns these into librdkafka configuration dictionaries.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """Where the broker is, how topics are named and how events are framed."""

    model_config = SettingsConfigDict(env_prefix="JOBTRAIL_", frozen=True, extra="ignore")

    bootstrap_servers: str = Field(default="127.0.0.1:9092", description="Kafka bootstrap servers")
    topic_prefix: str = Field(
        default="jobtrail.", description="Prefix of every jobtrail topic name"
    )
    partitions: int = Field(default=6, ge=1, description="Partitions for topics that are created")
    replication_factor: int = Field(
        default=1, ge=1, description="Replication of topics that are created"
    )
    schema_registry_url: str | None = Field(
        default=None, description="Schema Registry URL; unset means Avro single-object encoding"
    )
    client_id: str = Field(default="jobtrail", description="Kafka client.id prefix")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = Field(
        default=None, description="CA certificate (PEM file) that signed the brokers' certificates"
    )
    ssl_certificate_location: str | None = Field(
        default=None, description="Client certificate (PEM file), for brokers that require one"
    )
    ssl_key_location: str | None = Field(
        default=None, description="Private key (PEM file) of the client certificate"
    )
    connect_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="How long to wait for the broker before reporting it unreachable",
    )


class ProducerSettings(BaseSettings):
    """Batching and memory bounds of `JobEventProducer` (env prefix `JOBTRAIL_PRODUCER_`)."""

    model_config = SettingsConfigDict(env_prefix="JOBTRAIL_PRODUCER_", frozen=True, extra="ignore")

    linger_ms: int = Field(
        default=20, ge=0, description="How long librdkafka waits to fill a batch"
    )
    batch_size: int = Field(default=1_000_000, ge=1, description="Maximum batch size in bytes")
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    max_buffered_messages: int = Field(
        default=200_000, ge=1, description="Bound on records waiting for delivery (memory bound)"
    )
    max_buffered_kbytes: int = Field(
        default=262_144, ge=1, description="Bound on buffered kilobytes"
    )
    delivery_timeout_ms: int = Field(
        default=120_000, ge=1, description="A record not acknowledged within this time fails"
    )
