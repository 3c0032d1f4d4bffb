"""The specialised decoder reads exactly what fastavro reads, and refuses what it cannot."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import SINGLE_OBJECT_HEADER_LEN, SingleObjectCodec
from schemas.job_event import JobEvent
from schemas.job_event_reader import read_job_event
from tests.factories import events, make_event

codec = SingleObjectCodec()


@settings(max_examples=500)
@given(events)
def test_reads_what_fastavro_reads(event: JobEvent) -> None:
    data = codec.encode_record(event.to_avro())
    assert read_job_event(data, SINGLE_OBJECT_HEADER_LEN) == event
    assert read_job_event(data, SINGLE_OBJECT_HEADER_LEN) == JobEvent.from_avro(
        codec.decode_record(data)
    )


def test_reads_map_blocks_with_byte_sizes() -> None:
    # Other Avro writers may frame map blocks as (-count, byte size): the reader accepts both.
    event = make_event(attributes={"a": "1"})
    plain = codec.encode(event)
    assert plain.endswith(b"\x02\x02a\x021\x00")  # count 1, "a", "1", end
    sized = plain[: -len(b"\x02\x02a\x021\x00")] + b"\x01\x08\x02a\x021\x00"
    assert read_job_event(sized, SINGLE_OBJECT_HEADER_LEN) == event


@settings(max_examples=300)
@given(st.data())
def test_damaged_bytes_raise_or_read_as_fastavro_does(data: st.DataObject) -> None:
    encoded = bytearray(codec.encode(make_event()))
    position = data.draw(st.integers(SINGLE_OBJECT_HEADER_LEN, len(encoded) - 1))
    encoded[position] = data.draw(st.integers(0, 255))
    try:
        fast = read_job_event(bytes(encoded), SINGLE_OBJECT_HEADER_LEN)
    except (ValueError, IndexError, UnicodeDecodeError):
        return
    assert fast == JobEvent.from_avro(codec.decode_record(bytes(encoded)))


@pytest.mark.parametrize("cut", [11, 20, 40, -1])
def test_truncated_bytes_raise(cut: int) -> None:
    data = codec.encode(make_event())
    with pytest.raises((ValueError, IndexError)):
        read_job_event(data[:cut], SINGLE_OBJECT_HEADER_LEN)
