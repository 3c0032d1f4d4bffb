"""Faust gets the Kafka address and security of `KafkaSettings`, as every other client does."""

from __future__ import annotations

import ssl

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import SecretStr

from processors.faust_config import app_settings, credentials
from processors.settings import ProcessorSettings
from streams.kafka_config import common_config
from streams.settings import KafkaSettings

# Any CA bundle will do: the system's (Debian's ca-certificates).
CA_FILE = ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"


def auth(kafka: KafkaSettings) -> dict[str, object]:
    """What Faust hands aiokafka for these settings (its own translation)."""
    return dict(credentials_to_aiokafka_auth(credentials(kafka)))


def test_plaintext_is_plaintext() -> None:
    assert auth(KafkaSettings()) == {"security_protocol": "PLAINTEXT"}


def test_sasl_reaches_faust_with_the_same_values_as_librdkafka() -> None:
    kafka = KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
                          sasl_username="svc", sasl_password=SecretStr("s3cret"))  # fmt: skip
    got = auth(kafka)
    assert got["security_protocol"] == "SASL_PLAINTEXT"
    assert got["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (got["sasl_plain_username"], got["sasl_plain_password"]) == ("svc", "s3cret")
    assert got["ssl_context"] is None
    rdkafka = common_config(kafka, "x")
    assert (rdkafka["sasl.mechanism"], rdkafka["sasl.username"]) == ("SCRAM-SHA-512", "svc")


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_tls_verifies_the_brokers_against_the_configured_ca(protocol: str) -> None:
    kafka = KafkaSettings(security_protocol=protocol, ssl_ca_location=CA_FILE,  # type: ignore[arg-type]
                          sasl_username="svc", sasl_password=SecretStr("s3cret"))  # fmt: skip
    got = auth(kafka)
    assert got["security_protocol"] == protocol
    context = got["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0
    assert common_config(kafka, "x")["ssl.ca.location"] == CA_FILE


def test_the_app_settings_carry_the_brokers_and_the_credentials() -> None:
    kafka = KafkaSettings(bootstrap_servers="a:9092, b:9092", security_protocol="SASL_PLAINTEXT",
                          sasl_username="svc", sasl_password=SecretStr("s3cret"))  # fmt: skip
    settings = app_settings(ProcessorSettings(), kafka)
    assert settings["broker"] == ["kafka://a:9092", "kafka://b:9092"]
    assert settings["broker_credentials"].username == "svc"
    assert settings["table_standby_replicas"] == 0
