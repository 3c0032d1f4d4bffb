"""The processors reach a secured cluster: the SASL settings of `KafkaSettings` reach Faust (its
consumer, producer and admin client) and the processors' librdkafka producer alike. The local
broker has a SASL/PLAIN listener for this (infra/kafka.sh)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from processors.outcomes import recompute
from schemas.derived import decode_attempt_outcome
from streams.demo.workload import Workload, WorkloadConfig
from streams.producer import JobEventProducer
from streams.settings import KafkaSettings
from tests.conftest import catalog_of
from tests.integration.test_processors import processors_kafka, records, run_until_idle

__all__ = ["processors_kafka"]  # the fixture, used by name


@pytest.mark.timeout(300)
def test_the_processors_run_against_a_sasl_listener(
    processors_kafka: KafkaSettings, tmp_path: Path
) -> None:
    host = processors_kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)[0]
    password = os.environ.get("JOBTRAIL_KAFKA_SASL_PASSWORD", "jobtrail-secret")
    secured = processors_kafka.model_copy(update={
        "bootstrap_servers": f"{host}:{os.environ.get('JOBTRAIL_KAFKA_SASL_PORT', '9094')}",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_username": "jobtrail",
        "sasl_password": SecretStr(password),
    })  # fmt: skip
    events = list(Workload(WorkloadConfig(jobs=100), seed=8).events())
    with JobEventProducer(secured) as producer:
        producer.send_all(events)

    run_until_idle(secured, tmp_path, extra_env={
        "JOBTRAIL_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "JOBTRAIL_SASL_MECHANISM": "PLAIN",
        "JOBTRAIL_SASL_USERNAME": "jobtrail",
        "JOBTRAIL_SASL_PASSWORD": password,
    })  # fmt: skip

    topic = catalog_of(processors_kafka).attempt_outcomes.name
    written = [decode_attempt_outcome(value) for value in records(processors_kafka, topic)]
    outcomes = {(outcome.job_id, outcome.attempt): outcome for outcome in written}
    assert outcomes == recompute(events)
