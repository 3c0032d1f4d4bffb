"""Fixtures for real services.

Kafka comes from, in order: JOBTRAIL_TEST_BOOTSTRAP_SERVERS; the project's own local broker
(infra/kafka.sh, started if needed); testcontainers where a Docker engine answers. With none of
them the tests fail: skipping is never the CI path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.admin import TopicAdmin
from streams.settings import KafkaSettings
from streams.topics import TopicCatalog, topic_catalog

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.path) or "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.integration)


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    return probe.returncode == 0


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> str:
    given = os.environ.get("JOBTRAIL_TEST_BOOTSTRAP_SERVERS")
    if given:
        return given
    if shutil.which("java") and (
        shutil.which("mvn") or (REPO_ROOT / ".infra-data/kafka/libs").exists()
    ):
        subprocess.run([str(REPO_ROOT / "infra/kafka.sh"), "start"], check=True, timeout=600)
        return f"127.0.0.1:{os.environ.get('JOBTRAIL_KAFKA_PORT', '9092')}"
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        container = KafkaContainer("apache/kafka:3.9.1").with_kraft()
        container.start()
        request.addfinalizer(container.stop)
        return str(container.get_bootstrap_server())
    pytest.fail(
        "no Kafka for the tests: set JOBTRAIL_TEST_BOOTSTRAP_SERVERS, install java and maven"
        " (infra/kafka.sh), or run a Docker engine"
    )


@pytest.fixture
def kafka(kafka_bootstrap: str) -> Iterator[KafkaSettings]:
    """Settings with a topic prefix of the test's own; its catalog topics exist, and are
    deleted afterwards."""
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"test-{uuid.uuid4().hex[:10]}.",
        connect_timeout_s=15,
    )
    admin = TopicAdmin(settings)
    names = [spec.name for spec in catalog_of(settings).all()]
    admin.create(catalog_of(settings).all())
    yield settings
    admin.delete(names)


def catalog_of(settings: KafkaSettings) -> TopicCatalog:
    return topic_catalog(settings.topic_prefix, settings.partitions, settings.replication_factor)


def local_service(env_var: str, binary: str, service: str) -> str | None:
    """The endpoint given in `env_var`, or None after starting the project's local `service`
    (whose `binary` must be installed: failing, never skipping, when it is not)."""
    given = os.environ.get(env_var)
    if given:
        return given
    if shutil.which(binary) is None:
        pytest.fail(f"{binary} is not installed: run `make infra-install` (or set {env_var})")
    subprocess.run([str(REPO_ROOT / f"infra/{service}.sh"), "start"], check=True, timeout=600)
    return None


@pytest.fixture(scope="session")
def prometheus_url() -> str:
    """Prometheus that scrapes the ports in infra/prometheus/prometheus.yml."""
    port = os.environ.get("JOBTRAIL_PROMETHEUS_PORT", "9090")
    given = local_service("JOBTRAIL_TEST_PROMETHEUS_URL", "prometheus", "prometheus")
    return given or f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    port = os.environ.get("JOBTRAIL_REDIS_PORT", "6379")
    given = local_service("JOBTRAIL_TEST_REDIS_URL", "redis-server", "redis")
    return given or f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="session")
def couchbase_connstr() -> str:
    given = local_service("JOBTRAIL_TEST_COUCHBASE_CONNSTR", "java", "couchbase")
    infra = Path(os.environ.get("JOBTRAIL_INFRA_DIR", REPO_ROOT / ".infra-data"))
    return given or (infra / "couchbase" / "connstr").read_text().strip()


def unique_prefix(separator: str) -> str:
    return f"test-{uuid.uuid4().hex[:10]}{separator}"
