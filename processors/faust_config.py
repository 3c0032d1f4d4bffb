"""The Faust app's settings, from jobtrail's settings classes: the same Kafka address and security
(SASL, TLS) as every other client, and the throughput settings the processors need."""

from __future__ import annotations

import ssl
from typing import Any

import faust

from processors.settings import ProcessorSettings
from streams.settings import KafkaSettings


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """Verifies the brokers against `ssl_ca_location` (else the system's CAs); presents the
    client certificate when one is configured."""
    context = ssl.create_default_context(cafile=kafka.ssl_ca_location)
    if kafka.ssl_certificate_location:
        context.load_cert_chain(kafka.ssl_certificate_location, kafka.ssl_key_location)
    return context


def credentials(kafka: KafkaSettings) -> faust.types.auth.CredentialsT | None:
    """Faust's form of `security_protocol` and the SASL settings (None: plaintext)."""
    protocol = kafka.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(kafka) if protocol.endswith("SSL") else None
    if protocol == "SSL":
        assert context is not None
        return faust.SSLCredentials(context)
    password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
    return faust.SASLCredentials(username=kafka.sasl_username, password=password,
                                 mechanism=kafka.sasl_mechanism or "PLAIN",
                                 ssl_context=context)  # fmt: skip


def app_settings(settings: ProcessorSettings, kafka: KafkaSettings) -> dict[str, Any]:
    return {
        "broker": [f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(",")],
        "broker_credentials": credentials(kafka),
        "store": settings.store,
        "datadir": settings.data_dir,
        "processing_guarantee": settings.processing_guarantee,
        "topic_partitions": kafka.partitions,
        "topic_replication_factor": kafka.replication_factor,
        "web_enabled": False,
        "key_serializer": "raw",
        "value_serializer": "raw",
        "consumer_auto_offset_reset": "earliest",
        "producer_linger_ms": 20,
        "broker_session_timeout": 10.0,
        # Records are taken in batches: room for several batches per partition.
        "stream_buffer_maxsize": settings.batch_size * 4,
        "broker_max_poll_records": settings.batch_size,
        # A standby replica is a second copy of every table on another worker; on one host it
        # doubles the changelog reading for nothing.
        "table_standby_replicas": settings.standby_replicas,
        # Edges wait for the watermark unacknowledged, on purpose; Faust's default waits for
        # every unacknowledged record before a rebalance or a stop, which would wait forever.
        # Not waiting is safe: what is unacknowledged is not committed and is read again.
        "stream_wait_empty": False,
    }


def widen_producer_buffer(app: faust.App) -> None:
    """Table writes wait in Faust's producer buffer; at its default bound (100) every agent
    stalls on flushes many times a second."""
    app.producer.buffer.max_messages = 10_000
