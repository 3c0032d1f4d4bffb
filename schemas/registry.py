"""The Confluent wire format (magic 0, 4-byte schema id, Avro body) through a Schema Registry.

A thin adapter over confluent_kafka.schema_registry: the serializer registers the JobEvent schema
under the topic's value subject on first use, the deserializer fetches writer schemas by id and
resolves them into the current reader schema. A ``mock://`` URL selects the library's in-memory
registry (unit tests only).
"""

from __future__ import annotations

import json
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

from jobtrail.errors import CorruptMessageError, EncodeError, JobtrailError, UnknownSchemaError
from schemas.job_event import JobEvent, job_event_schema

CONFLUENT_MAGIC = b"\x00"
CONFLUENT_HEADER_LEN = 5


class RegistryUnavailableError(JobtrailError):
    """The Schema Registry did not answer; retrying later can help."""

    retryable = True


class ConfluentCodec:
    """JobEvent codec in the Confluent wire format. Network I/O happens on first encode/decode."""

    def __init__(self, registry_url: str, extra_config: dict[str, Any] | None = None) -> None:
        self._client = SchemaRegistryClient.new_client(
            {"url": registry_url, **(extra_config or {})}
        )
        schema_text = json.dumps(job_event_schema())
        self._serializer = AvroSerializer(
            self._client, schema_text, to_dict=lambda event, _ctx: event.to_avro()
        )
        self._deserializer = AvroDeserializer(self._client, schema_text)
        schema = job_event_schema()
        self.schema_label = f"{schema['namespace']}.{schema['name']}@registry"

    def encode(self, event: JobEvent, topic: str) -> bytes:
        context = SerializationContext(topic, MessageField.VALUE)
        try:
            data: bytes = self._serializer(event, context)
        except SchemaRegistryError as exc:
            raise RegistryUnavailableError(f"schema registry: {exc}") from exc
        except (SerializationError, ValueError, TypeError, AttributeError, KeyError) as exc:
            raise EncodeError(f"event does not match the JobEvent schema: {exc}") from exc
        return data

    def decode(self, data: bytes, topic: str) -> JobEvent:
        if len(data) <= CONFLUENT_HEADER_LEN or data[:1] != CONFLUENT_MAGIC:
            raise CorruptMessageError("not in the Confluent wire format (magic byte 0 + schema id)")
        context = SerializationContext(topic, MessageField.VALUE)
        try:
            record: dict[str, Any] = self._deserializer(data, context)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                schema_id = int.from_bytes(data[1:CONFLUENT_HEADER_LEN], "big")
                raise UnknownSchemaError(f"schema id {schema_id} is not in the registry") from exc
            raise RegistryUnavailableError(f"schema registry: {exc}") from exc
        except Exception as exc:  # SerializationError, EOFError, IndexError, ... from fastavro
            raise CorruptMessageError(f"corrupt Avro body: {type(exc).__name__}: {exc}") from exc
        return JobEvent.from_avro(record)
