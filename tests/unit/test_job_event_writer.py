"""The specialised encoder writes exactly what fastavro writes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings

from jobtrail.errors import EncodeError
from schemas.codec import SingleObjectCodec, schema_fingerprint
from schemas.job_event import EPOCH, JobEvent, job_event_schema
from schemas.job_event_writer import SCHEMA_FINGERPRINT, write_job_event, zigzag_varint
from schemas.registry import ConfluentCodec
from streams.demo.workload import Workload, WorkloadConfig
from tests.factories import events, make_event

codec = SingleObjectCodec()


def test_the_writer_is_for_the_current_schema() -> None:
    assert schema_fingerprint(job_event_schema()).hex() == SCHEMA_FINGERPRINT, (
        "schemas/job_event.avsc changed: update schemas/job_event_writer.py for the new"
        " fields and SCHEMA_FINGERPRINT (until then the codec falls back to fastavro)"
    )


@settings(max_examples=500)
@given(events)
def test_bytes_equal_fastavro_for_any_event(event: JobEvent) -> None:
    assert write_job_event(event, b"H") == b"H" + codec.encode_record(event.to_avro())[10:]


def test_bytes_equal_fastavro_for_the_demo_workload() -> None:
    for event in Workload(WorkloadConfig(jobs=None, events=5000), seed=1).events():
        assert codec.encode(event) == codec.encode_record(event.to_avro())


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, b"\x00"), (-1, b"\x01"), (1, b"\x02"), (63, b"\x7e"), (64, b"\x80\x01"),
     (-(2**63), b"\xff" * 9 + b"\x01")],
)  # fmt: skip
def test_zigzag_varint_matches_the_spec(value: int, encoded: bytes) -> None:
    assert zigzag_varint(value) == encoded


@pytest.mark.parametrize(
    "overrides",
    [{"attempt": "two"}, {"job_id": 42}, {"will_retry": "yes"}, {"attributes": {"a": 1}}],
)
def test_wrong_types_still_get_the_precise_error(overrides: dict[str, object]) -> None:
    with pytest.raises(EncodeError, match=next(iter(overrides))):
        codec.encode(make_event(**overrides))


def test_the_label_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import schemas.job_event_writer as writer

    monkeypatch.setattr(writer, "_LABELS_MAX", 8)
    writer._LABELS.clear()
    for index in range(100):
        event = make_event(job_name=f"job-{index}", worker=f"w-{index % 3}")
        assert codec.encode(event) == codec.encode_record(event.to_avro())
        assert len(writer._LABELS) <= 8


INT_BOUNDS = (-(2**31), -1, 0, 4095, 4096, 2**31 - 1)


@pytest.mark.parametrize("value", INT_BOUNDS)
def test_avro_int_boundaries_round_trip_through_both_writers(value: int) -> None:
    event = make_event(attempt=value, max_attempts=value)
    fast = codec.encode(event)
    assert fast == codec.encode_record(event.to_avro())
    decoded = codec.decode(fast)
    assert (decoded.attempt, decoded.max_attempts) == (value, value)


@pytest.mark.parametrize(
    "moment", [datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC), EPOCH]
)
def test_every_datetime_fits_avro_long(moment: datetime) -> None:
    event = make_event(occurred_at=moment)
    assert codec.encode(event) == codec.encode_record(event.to_avro())
    assert codec.decode(codec.encode(event)).occurred_at == moment.replace(
        microsecond=moment.microsecond // 1000 * 1000
    )


OUT_OF_INT = (2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**64, 10**30)


@pytest.mark.parametrize("value", OUT_OF_INT)
@pytest.mark.parametrize("field", ["attempt", "max_attempts"])
def test_ints_outside_avro_int_are_refused_not_written(field: str, value: int) -> None:
    event = make_event(**{field: value})
    with pytest.raises(EncodeError, match=f"{field} is {value}"):
        write_job_event(event)
    with pytest.raises(EncodeError, match=field):
        codec.encode(event)
    with pytest.raises(EncodeError, match=field):
        event.to_avro()  # fastavro's path, and the registry serializer's


def test_the_registry_codec_refuses_them_too() -> None:
    registry = ConfluentCodec("mock://writer-range")
    with pytest.raises(EncodeError, match="attempt"):
        registry.encode(make_event(attempt=2**63), "t.job-events")
    good = make_event(attempt=2**31 - 1)
    assert registry.decode(registry.encode(good, "t.job-events"), "t.job-events") == good
