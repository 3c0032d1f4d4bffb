"""Encode and decode JobEvents with fastavro, in one of two framings.

- Avro single-object encoding (the default, registry-less): ``C3 01`` + the writer schema's
  CRC-64-AVRO fingerprint (8 bytes, little-endian) + the Avro binary body. The reader resolves the
  fingerprint among the schemas it knows, so old and new writers can share a topic.
- The Confluent wire format (``00`` + 4-byte schema id + body) through a Schema Registry, used
  when ``JOBTRAIL_SCHEMA_REGISTRY_URL`` is set.

Decoding never returns half-read data: unknown schemas, truncated or corrupted bytes and values
of the wrong type raise typed `SchemaError`s, which consumers turn into dead-letter records.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form
from fastavro.validation import validate

from jobtrail.errors import CorruptMessageError, EncodeError, UnknownSchemaError
from schemas.job_event import JobEvent, job_event_schema
from schemas.job_event_reader import read_job_event
from schemas.job_event_writer import SCHEMA_FINGERPRINT, write_job_event

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
SINGLE_OBJECT_HEADER_LEN = 10

# What fastavro raises on bytes that do not decode: short reads, bad varints, indexes out of an
# enum's or union's range, invalid UTF-8.
_DECODE_FAILURES = (
    EOFError,
    ValueError,
    IndexError,
    KeyError,
    TypeError,
    OverflowError,
    MemoryError,
    struct.error,
    UnicodeDecodeError,
)
_ENCODE_FAILURES = (ValueError, TypeError, KeyError, AttributeError, OverflowError, struct.error)


class JobEventCodec(Protocol):
    """Turns JobEvents into message values and back. `topic` matters to registry framings."""

    @property
    def schema_label(self) -> str:
        """A short identity of the writer schema, sent as the `jobtrail.schema` header."""
        ...

    def encode(self, event: JobEvent, topic: str) -> bytes: ...

    def decode(self, data: bytes, topic: str) -> JobEvent: ...


def schema_fingerprint(schema: Mapping[str, Any]) -> bytes:
    """CRC-64-AVRO of the schema's parsing canonical form, in single-object byte order."""
    canonical = to_parsing_canonical_form(fastavro.parse_schema(dict(schema)))
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


class SingleObjectCodec:
    """Avro single-object encoding; no registry needed.

    `writer_schemas` are the other schema versions this reader accepts (older or newer); data is
    always resolved into `reader_schema`, the current contract by default.
    """

    def __init__(
        self,
        reader_schema: Mapping[str, Any] | None = None,
        writer_schemas: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        raw = dict(reader_schema or job_event_schema())
        self._schema = fastavro.parse_schema(raw)
        own = schema_fingerprint(raw)
        self._header = SINGLE_OBJECT_MAGIC + own
        self._writers: dict[bytes, Any] = {own: self._schema}
        for other in writer_schemas:
            self._writers[schema_fingerprint(other)] = fastavro.parse_schema(dict(other))
        self.schema_label = f"{raw.get('namespace', '')}.{raw['name']}@{own.hex()}"
        # The specialised writer implements one schema version exactly; others use fastavro.
        self._fast = own.hex() == SCHEMA_FINGERPRINT

    def encode(self, event: JobEvent, topic: str = "") -> bytes:
        if self._fast:
            try:
                return write_job_event(event, self._header)
            except _ENCODE_FAILURES:
                pass  # fastavro either writes it too, or says precisely what is wrong
        return self.encode_record(event.to_avro())

    def encode_record(self, record: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        buffer.write(self._header)
        try:
            fastavro.schemaless_writer(buffer, self._schema, record)
        except _ENCODE_FAILURES as exc:
            raise EncodeError(_explain_encode_failure(record, self._schema, exc)) from exc
        return buffer.getvalue()

    def decode(self, data: bytes, topic: str = "") -> JobEvent:
        if self._fast and data[2:SINGLE_OBJECT_HEADER_LEN] == self._header[2:]:
            try:
                return read_job_event(data, SINGLE_OBJECT_HEADER_LEN)
            except (ValueError, IndexError, UnicodeDecodeError, OverflowError, struct.error):
                pass  # fastavro says precisely what is wrong (or reads what this could not)
        return JobEvent.from_avro(self.decode_record(data))

    def decode_record(self, data: bytes) -> dict[str, Any]:
        if len(data) < SINGLE_OBJECT_HEADER_LEN:
            raise CorruptMessageError(f"{len(data)} bytes: shorter than a single-object header")
        if data[:2] != SINGLE_OBJECT_MAGIC:
            raise CorruptMessageError(
                f"not Avro single-object encoding (magic {data[:2].hex()}, expected c301)"
            )
        writer = self._writers.get(data[2:SINGLE_OBJECT_HEADER_LEN])
        if writer is None:
            raise UnknownSchemaError(
                f"unknown writer schema fingerprint {data[2:SINGLE_OBJECT_HEADER_LEN].hex()}"
            )
        return _read_body(data, SINGLE_OBJECT_HEADER_LEN, writer, self._schema)


def _read_body(data: bytes, offset: int, writer: Any, reader: Any) -> dict[str, Any]:
    """Decodes one Avro body that must span exactly `data[offset:]`."""
    buffer = io.BytesIO(data)
    buffer.seek(offset)
    try:
        record = fastavro.schemaless_reader(buffer, writer, reader)
    except _DECODE_FAILURES as exc:
        raise CorruptMessageError(f"corrupt Avro body: {type(exc).__name__}: {exc}") from exc
    if not isinstance(record, dict):
        raise CorruptMessageError(f"Avro body is a {type(record).__name__}, not a record")
    if buffer.tell() != len(data):
        # A short read inside fastavro does not always raise; the position tells the truth.
        raise CorruptMessageError(
            f"Avro body length mismatch: decoded {buffer.tell() - offset} of"
            f" {len(data) - offset} bytes"
        )
    return record


def _explain_encode_failure(record: dict[str, Any], schema: Any, exc: Exception) -> str:
    try:
        validate(record, schema, raise_errors=True)
    except Exception as invalid:  # fastavro's ValidationError lists the offending fields
        return f"event does not match the JobEvent schema: {invalid}"
    return f"event could not be encoded: {type(exc).__name__}: {exc}"


def create_codec(schema_registry_url: str | None) -> JobEventCodec:
    """The Confluent wire format when a registry URL is configured, else single-object encoding."""
    if schema_registry_url:
        from schemas.registry import ConfluentCodec  # only registry users pay for its imports

        return ConfluentCodec(schema_registry_url)
    return SingleObjectCodec()
