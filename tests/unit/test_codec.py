"""Framings of the JobEvent contract: round trips and every kind of bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobtrail.errors import CorruptMessageError, EncodeError, SchemaError, UnknownSchemaError
from schemas.codec import SINGLE_OBJECT_MAGIC, SingleObjectCodec, create_codec, schema_fingerprint
from schemas.job_event import JobEvent, JobEventType, job_event_schema
from schemas.registry import ConfluentCodec
from tests.factories import events, make_event


def rabin_fingerprint_reference(data: bytes) -> int:
    """CRC-64-AVRO exactly as the Avro specification's reference code computes it."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


codec = SingleObjectCodec()


@given(events)
def test_single_object_round_trip(event: JobEvent) -> None:
    assert codec.decode(codec.encode(event)) == event


def test_single_object_header_is_magic_and_little_endian_fingerprint() -> None:
    from fastavro import parse_schema
    from fastavro.schema import to_parsing_canonical_form

    canonical = to_parsing_canonical_form(parse_schema(job_event_schema()))
    expected = rabin_fingerprint_reference(canonical.encode()).to_bytes(8, "little")
    data = codec.encode(make_event())
    assert data[:2] == SINGLE_OBJECT_MAGIC == b"\xc3\x01"
    assert data[2:10] == expected == schema_fingerprint(job_event_schema())
    assert codec.schema_label.endswith(expected.hex())


def test_spec_test_vector_for_int_schema() -> None:
    # Known value from the Avro spec implementations: fingerprint64('"int"').
    assert rabin_fingerprint_reference(b'"int"') == 0x7275D51A3F395C8F


def test_unknown_schema_fingerprint_is_refused() -> None:
    data = bytearray(codec.encode(make_event()))
    data[2:10] = b"\x00" * 8
    with pytest.raises(UnknownSchemaError, match="unknown writer schema"):
        codec.decode(bytes(data))


@pytest.mark.parametrize("data", [b"", b"\xc3", b"\xc3\x01\x00", b"\x00\x01" + b"\x00" * 20])
def test_short_or_wrongly_framed_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(CorruptMessageError):
        codec.decode(data)


def test_every_truncation_is_refused() -> None:
    data = codec.encode(make_event())
    for cut in range(len(data)):
        with pytest.raises(SchemaError):
            codec.decode(data[:cut])


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(CorruptMessageError, match="length mismatch"):
        codec.decode(codec.encode(make_event()) + b"\x00")


@settings(max_examples=300)
@given(st.data())
def test_corrupted_bytes_never_escape_as_untyped_errors(data: st.DataObject) -> None:
    encoded = bytearray(codec.encode(make_event()))
    position = data.draw(st.integers(10, len(encoded) - 1))
    encoded[position] = data.draw(st.integers(0, 255))
    try:
        decoded = codec.decode(bytes(encoded))
    except SchemaError:
        return
    assert isinstance(decoded, JobEvent)  # a flip can land on another valid value


def test_invalid_enum_index_is_a_corrupt_message() -> None:
    # The type enum follows queue (a union): find it by re-encoding with a known layout.
    event = make_event(queue=None)
    data = bytearray(codec.encode(event))
    body = codec.encode(make_event(queue=None, type=JobEventType.QUEUED))
    index = next(i for i, (a, b) in enumerate(zip(data, body, strict=True)) if a != b)
    data[index] = 60  # zig-zag 30: no such symbol
    with pytest.raises(CorruptMessageError):
        codec.decode(bytes(data))


@pytest.mark.parametrize(
    ("field", "value"),
    [("attempt", "two"), ("job_id", 42), ("type", "EXPLODED"), ("attributes", {"a": 1})],
)
def test_wrong_types_are_refused_when_encoding(field: str, value: object) -> None:
    record = make_event().to_avro()
    record[field] = value
    with pytest.raises(EncodeError, match=field):
        codec.encode_record(record)


def test_create_codec_defaults_to_single_object() -> None:
    assert isinstance(create_codec(None), SingleObjectCodec)
    assert isinstance(create_codec("mock://jobtrail"), ConfluentCodec)


class TestConfluentWireFormat:
    """Against the client library's own in-memory registry (mock://)."""

    def test_round_trip_and_framing(self) -> None:
        confluent = ConfluentCodec("mock://round-trip")
        event = make_event()
        data = confluent.encode(event, "jobtrail.job-events")
        assert data[0] == 0  # magic byte
        assert int.from_bytes(data[1:5], "big") >= 0  # the registered schema id
        assert confluent.decode(data, "jobtrail.job-events") == event

    def test_unknown_schema_id_is_refused(self) -> None:
        confluent = ConfluentCodec("mock://unknown-id")
        data = confluent.encode(make_event(), "t")
        forged = b"\x00" + (999_999).to_bytes(4, "big") + data[5:]
        with pytest.raises(UnknownSchemaError, match="999999"):
            confluent.decode(forged, "t")

    def test_single_object_bytes_are_not_confluent(self) -> None:
        with pytest.raises(CorruptMessageError, match="Confluent wire format"):
            ConfluentCodec("mock://cross").decode(codec.encode(make_event()), "t")

    def test_truncated_body_is_refused(self) -> None:
        confluent = ConfluentCodec("mock://truncated")
        data = confluent.encode(make_event(), "t")
        with pytest.raises(SchemaError):
            confluent.decode(data[: len(data) // 2], "t")

    def test_wrong_types_are_refused(self) -> None:
        with pytest.raises(EncodeError):
            ConfluentCodec("mock://types").encode(make_event(attempt="x"), "t")
