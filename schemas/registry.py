"""The Confluent wire format (magic 0, 4-byte schema id, Avro body) through a Schema Registry.

A thin adapter over confluent_kafka.schema_registry: the serializer registers the JobEvent schema
under the topic's value subject on first use, the deserializer fetches writer schemas by id and
resolves them into the current reader schema. A ``mock://`` URL selects the library's in-memory
registry (unit tests only).

A registry that is down or overloaded (connection errors, timeouts, 408/429/5xx) says nothing
about the record: the call is retried with exponential back-off and jitter (tenacity) for at most
`max_wait_s`, then `RegistryUnavailableError` (retryable) tells the consumer to keep the record
and try again later; it is never turned into a dead letter. Only what the registry answers about
the record itself (404: no such schema id) or bytes that do not decode are `SchemaError`s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from jobtrail.errors import CorruptMessageError, EncodeError, JobtrailError, UnknownSchemaError
from schemas.job_event import JobEvent, job_event_schema

CONFLUENT_MAGIC = b"\x00"
CONFLUENT_HEADER_LEN = 5
# The registry's answers that mean "not now" rather than "no" (the client library's own list).
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
T = TypeVar("T")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Network failures (refused, reset, timed out, DNS) of whichever HTTP client the registry
    client uses: it prefers httpx2 and falls back to httpx, so both count."""
    found: list[type[BaseException]] = []
    for name in ("httpx2", "httpx"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        found.append(module.TransportError)
    return tuple(found)


_TRANSPORT_ERRORS = _transport_errors()


class RegistryUnavailableError(JobtrailError):
    """The Schema Registry did not answer (or answered 408/429/5xx) for longer than the retry
    budget; the record is fine: keep it and retry later."""

    retryable = True


class RegistryRefusedError(JobtrailError):
    """The registry refused the request for a reason retrying will not fix (401/403, an
    incompatible or invalid schema on register): a configuration problem, not a bad record."""


def is_transient(error: BaseException) -> bool:
    """Whether a registry call that raised `error` may succeed when repeated."""
    if isinstance(error, SchemaRegistryError):
        return error.http_status_code in TRANSIENT_STATUSES
    return isinstance(error, _TRANSPORT_ERRORS)


class ConfluentCodec:
    """JobEvent codec in the Confluent wire format. Network I/O happens on first encode/decode
    of each schema (the client caches schemas by id and subject)."""

    def __init__(
        self,
        registry_url: str,
        extra_config: dict[str, Any] | None = None,
        *,
        max_wait_s: float = 30.0,
        first_backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
    ) -> None:
        # The client's own retries are off: one policy, with one deadline, is ours (below).
        config = {"url": registry_url, "max.retries": 0, "timeout": 10, **(extra_config or {})}
        self._client = SchemaRegistryClient.new_client(config)
        schema_text = json.dumps(job_event_schema())
        self._serializer = AvroSerializer(
            self._client, schema_text, to_dict=lambda event, _ctx: event.to_avro()
        )
        self._deserializer = AvroDeserializer(self._client, schema_text)
        schema = job_event_schema()
        self.schema_label = f"{schema['namespace']}.{schema['name']}@registry"
        self.max_wait_s = max_wait_s
        self._wait = wait_exponential_jitter(multiplier=first_backoff_s, max=max_backoff_s)

    def encode(self, event: JobEvent, topic: str) -> bytes:
        context = SerializationContext(topic, MessageField.VALUE)
        try:
            data: bytes = self._patiently(lambda: self._serializer(event, context))
        except SchemaRegistryError as exc:
            raise RegistryRefusedError(f"schema registry refused the schema: {exc}") from exc
        except (SerializationError, ValueError, TypeError, AttributeError, KeyError) as exc:
            raise EncodeError(f"event does not match the JobEvent schema: {exc}") from exc
        return data

    def decode(self, data: bytes, topic: str) -> JobEvent:
        if len(data) <= CONFLUENT_HEADER_LEN or data[:1] != CONFLUENT_MAGIC:
            raise CorruptMessageError("not in the Confluent wire format (magic byte 0 + schema id)")
        context = SerializationContext(topic, MessageField.VALUE)
        try:
            record: dict[str, Any] = self._patiently(lambda: self._deserializer(data, context))
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                schema_id = int.from_bytes(data[1:CONFLUENT_HEADER_LEN], "big")
                raise UnknownSchemaError(f"schema id {schema_id} is not in the registry") from exc
            raise RegistryRefusedError(f"schema registry: {exc}") from exc
        except RegistryUnavailableError:
            raise
        except Exception as exc:  # SerializationError, EOFError, IndexError, ... from fastavro
            raise CorruptMessageError(f"corrupt Avro body: {type(exc).__name__}: {exc}") from exc
        return JobEvent.from_avro(record)

    def _patiently(self, call: Callable[[], T]) -> T:
        """`call()`, repeated with back-off while the registry's failure is transient."""
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            wait=self._wait,
            stop=stop_after_delay(self.max_wait_s),
        )
        try:
            return retrying(call)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise RegistryUnavailableError(
                f"schema registry unavailable for {self.max_wait_s:g} s"
                f" ({retrying.statistics.get('attempt_number', '?')} attempts): {last}"
            ) from last
