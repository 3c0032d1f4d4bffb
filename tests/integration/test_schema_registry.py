"""The Confluent codec against a Schema Registry server process on loopback
(tests/fake_schema_registry.py) that answers 503 or is not there: the record is fine, so the codec
retries with back-off, and after its budget raises a retryable RegistryUnavailableError, never a
SchemaError (which consumers would dead-letter)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from jobtrail.errors import SchemaError, UnknownSchemaError
from schemas.registry import ConfluentCodec, RegistryUnavailableError
from tests.conftest import REPO_ROOT
from tests.factories import make_event

TOPIC = "jobtrail.job-events"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def registry() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_schema_registry", "--port", str(port)],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.urlopen(base + "/control/stats", timeout=1).read()
            break
        except OSError:
            assert time.monotonic() < deadline, "the fake Schema Registry did not start"
            time.sleep(0.1)
    yield base
    server.terminate()
    server.wait(10)


def control(base: str, **settings: Any) -> None:
    request = urllib.request.Request(
        base + "/control", json.dumps(settings).encode(), {"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=5).read()


def answers(base: str) -> dict[str, int]:
    stats: dict[str, Any] = json.loads(urllib.request.urlopen(base + "/control/stats").read())
    return dict(stats["answers"])


def codec(base: str, max_wait_s: float = 10.0) -> ConfluentCodec:
    return ConfluentCodec(base, max_wait_s=max_wait_s, first_backoff_s=0.05, max_backoff_s=0.5)


def test_encode_and_decode_ride_out_503s(registry: str) -> None:
    event = make_event()
    control(registry, fail=3)
    data = codec(registry).encode(event, TOPIC)
    assert answers(registry)["503"] == 3
    control(registry, fail=4)
    # A new codec has no cached schema: it must fetch the writer schema by id, through 503s.
    assert codec(registry).decode(data, TOPIC) == event
    assert answers(registry)["503"] == 7


def test_a_registry_down_past_the_budget_is_a_retryable_error_not_a_bad_record(
    registry: str,
) -> None:
    data = codec(registry).encode(make_event(), TOPIC)
    control(registry, down=True)
    started = time.monotonic()
    with pytest.raises(RegistryUnavailableError) as failure:
        codec(registry, max_wait_s=1.5).decode(data, TOPIC)
    elapsed = time.monotonic() - started
    assert failure.value.retryable and not isinstance(failure.value, SchemaError)
    assert 1.5 <= elapsed < 4
    assert answers(registry)["503"] >= 3  # backed off and tried again, not once
    with pytest.raises(RegistryUnavailableError):
        codec(registry, max_wait_s=0.5).encode(make_event(), TOPIC)
    control(registry, down=False)
    assert codec(registry).decode(data, TOPIC) == make_event()


def test_a_registry_that_is_not_listening_is_unavailable_not_corrupt_data(
    registry: str,
) -> None:
    data = codec(registry).encode(make_event(), TOPIC)
    nobody = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RegistryUnavailableError):
        codec(nobody, max_wait_s=0.5).decode(data, TOPIC)
    with pytest.raises(RegistryUnavailableError):
        codec(nobody, max_wait_s=0.5).encode(make_event(), TOPIC)


def test_an_unknown_schema_id_is_a_bad_record_at_once(registry: str) -> None:
    data = codec(registry).encode(make_event(), TOPIC)
    unknown = data[:1] + (999).to_bytes(4, "big") + data[5:]
    started = time.monotonic()
    with pytest.raises(UnknownSchemaError):
        codec(registry).decode(unknown, TOPIC)
    assert time.monotonic() - started < 1  # the registry's "no" is not retried
