"""Schema evolution: adding an optional field is compatible in both directions."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from jobtrail.errors import UnknownSchemaError
from schemas.codec import SingleObjectCodec
from schemas.job_event import job_event_schema
from tests.factories import make_event


def schema_with_added_field() -> dict[str, Any]:
    newer = copy.deepcopy(job_event_schema())
    newer["fields"].append({"name": "priority", "type": ["null", "int"], "default": None})
    return newer


def test_newer_reader_reads_old_data() -> None:
    old_writer = SingleObjectCodec()
    new_reader = SingleObjectCodec(schema_with_added_field(), writer_schemas=[job_event_schema()])
    record = new_reader.decode_record(old_writer.encode(make_event()))
    assert record["priority"] is None  # the default fills the field old writers lack
    assert record["job_id"] == "job-1"


def test_old_reader_reads_new_data() -> None:
    new_writer = SingleObjectCodec(schema_with_added_field())
    old_reader = SingleObjectCodec(writer_schemas=[schema_with_added_field()])
    record = {**make_event().to_avro(), "priority": 7}
    decoded = old_reader.decode(new_writer.encode_record(record))
    assert decoded == make_event()  # the unknown field is skipped


def test_a_reader_refuses_a_newer_schema_it_was_not_told_about() -> None:
    new_writer = SingleObjectCodec(schema_with_added_field())
    record = {**make_event().to_avro(), "priority": 7}
    with pytest.raises(UnknownSchemaError):
        SingleObjectCodec().decode(new_writer.encode_record(record))


def test_removing_a_required_field_is_incompatible() -> None:
    broken = copy.deepcopy(job_event_schema())
    broken["fields"] = [f for f in broken["fields"] if f["name"] != "job_id"]
    writer = SingleObjectCodec(broken)
    reader = SingleObjectCodec(writer_schemas=[broken])
    data = writer.encode_record({k: v for k, v in make_event().to_avro().items() if k != "job_id"})
    with pytest.raises(Exception, match="job_id"):
        reader.decode(data)
