from __future__ import annotations

import pytest
from hypothesis import given

from jobtrail.errors import CorruptMessageError, UnknownSchemaError
from processors.validation import (
    MAX_PAYLOAD_BYTES,
    REASONS,
    decode_violation,
    violation,
)
from schemas.job_event import JobError, JobEvent, JobEventType
from streams.demo.workload import Workload, WorkloadConfig
from tests.factories import events, make_event


def test_demo_events_are_all_valid() -> None:
    for event in Workload(WorkloadConfig(jobs=300), seed=4).events():
        assert violation(event) is None


@pytest.mark.parametrize(
    ("overrides", "reason", "detail"),
    [
        ({"job_id": ""}, "missing_job_id", "job_id"),
        ({"event_id": ""}, "missing_event_id", "event_id"),
        ({"job_name": ""}, "missing_job_name", "job_name"),
        ({"attempt": 0}, "attempt_below_1", "attempt is 0"),
        ({"data": "x" * (MAX_PAYLOAD_BYTES + 1)}, "oversized_field", "data is 262145"),
        ({"attributes": {str(i): "v" for i in range(65)}}, "oversized_field", "attributes is 65"),
        (
            {"type": JobEventType.COMPLETED, "error": JobError("E", "m")},
            "error_on_wrong_type",
            "COMPLETED",
        ),
    ],
)
def test_each_broken_rule_has_its_reason(
    overrides: dict[str, object], reason: str, detail: str
) -> None:
    found = violation(make_event(**overrides))
    assert found is not None and found.reason == reason and detail in found.detail


def test_decode_errors_have_reasons_too() -> None:
    assert decode_violation(UnknownSchemaError("fp 00")).reason == "unknown_schema"
    assert decode_violation(CorruptMessageError("short")).reason == "undecodable"


@given(events)
def test_reasons_come_from_the_fixed_vocabulary(event: JobEvent) -> None:
    found = violation(event)
    assert found is None or found.reason in REASONS
