from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given

from jobtrail.errors import CorruptMessageError, UnknownSchemaError
from processors.validation import (
    MAX_PAYLOAD_BYTES,
    REASONS,
    ContractLimits,
    decode_violation,
    violation,
)
from schemas.job_event import JobError, JobEvent, JobEventType, millis
from streams.demo.workload import Workload, WorkloadConfig
from tests.factories import events, make_event

DAY_MS = 86_400_000
WHEN = datetime.fromisoformat("2026-03-01T12:00:00.123+00:00")


def test_demo_events_are_all_valid() -> None:
    for event in Workload(WorkloadConfig(jobs=300), seed=4).events():
        assert violation(event, record_timestamp_ms=millis(event.occurred_at)) is None


LONG = "x" * 257
FAILED_ERROR = JobError("TimeoutError", "timed out", "Traceback ...")


@pytest.mark.parametrize(
    ("overrides", "reason", "detail"),
    [
        ({"job_id": ""}, "missing_job_id", "job_id"),
        ({"event_id": ""}, "missing_event_id", "event_id"),
        ({"job_name": ""}, "missing_job_name", "job_name"),
        ({"attempt": 0}, "attempt_below_1", "attempt is 0"),
        ({"attempt": 2**31}, "int_out_of_range", "attempt is 2147483648"),
        ({"max_attempts": 2**63}, "int_out_of_range", "max_attempts"),
        ({"max_attempts": -(2**31) - 1}, "int_out_of_range", "max_attempts"),
        ({"progress": math.nan}, "progress_not_finite", "nan"),
        ({"progress": math.inf}, "progress_not_finite", "inf"),
        ({"progress": -math.inf}, "progress_not_finite", "-inf"),
        (
            {"occurred_at": datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)},
            "event_time_too_old",
            "1999",
        ),
        ({"occurred_at": datetime(1970, 1, 1, tzinfo=UTC)}, "event_time_too_old", "1970"),
        ({"occurred_at": datetime(2026, 3, 1)}, "event_time_without_zone", "no time zone"),
        ({"data": "x" * (MAX_PAYLOAD_BYTES + 1)}, "oversized_field", "data is 262145"),
        ({"result": "x" * (MAX_PAYLOAD_BYTES + 1)}, "oversized_field", "result"),
        ({"attributes": {str(i): "v" for i in range(65)}}, "oversized_field", "attributes is 65"),
        ({"event_id": LONG}, "oversized_field", "event_id is 257"),
        ({"job_id": LONG}, "oversized_field", "job_id is 257"),
        ({"job_name": LONG}, "oversized_field", "job_name is 257"),
        ({"queue": LONG}, "oversized_field", "queue is 257"),
        ({"worker": LONG}, "oversized_field", "worker is 257"),
        ({"source": LONG}, "oversized_field", "source is 257"),
        ({"error": JobError(LONG, "m")}, "oversized_field", "error.type is 257"),
        ({"error": JobError("E", "m" * 65_537)}, "oversized_field", "error.message is 65537"),
        ({"error": JobError("E", "m", "s" * 65_537)}, "oversized_field", "error.stack is 65537"),
        (
            {"error": JobError("E", "m" * 40_000, "s" * 40_000)},
            "oversized_field",
            "error is 80000",
        ),
        ({"attributes": {LONG: "v"}}, "oversized_field", "attribute key is 257"),
        ({"attributes": {"k": "v" * 4097}}, "oversized_field", "attribute 'k' is 4097"),
        # Bytes, not characters: 129 two-byte characters are 258 bytes.
        ({"job_name": "é" * 129}, "oversized_field", "job_name is 258"),
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
    assert found is not None
    assert found.reason == reason and detail in found.detail
    assert found.reason in REASONS


@pytest.mark.parametrize(
    "overrides",
    [
        {"attempt": 2**31 - 1, "max_attempts": 2**31 - 1},
        {"max_attempts": -(2**31)},
        {"progress": 0.0},
        {"progress": -1e308},
        {"occurred_at": datetime(2000, 1, 1, tzinfo=UTC)},
        {"event_id": "x" * 256, "job_id": "y" * 256, "job_name": "z" * 256},
        {"attributes": {"k" * 256: "v" * 4096}},
        {"error": JobError("E" * 256, "m" * 32_768, "s" * 32_768)},
        {"occurred_at": datetime(2026, 3, 1, 13, tzinfo=timezone(timedelta(hours=1)))},
    ],
)
def test_values_at_the_limits_are_accepted(overrides: dict[str, object]) -> None:
    assert violation(make_event(**overrides)) is None


def test_event_time_after_the_record_timestamp_by_more_than_the_skew_is_refused() -> None:
    event = make_event(occurred_at=WHEN)
    at = millis(WHEN)
    assert violation(event, record_timestamp_ms=at - DAY_MS) is None  # exactly the skew
    found = violation(event, record_timestamp_ms=at - DAY_MS - 1)
    assert found is not None and found.reason == "event_time_in_future"
    # Late events (the record written long after) are fine: backfills and replays.
    assert violation(event, record_timestamp_ms=at + 365 * DAY_MS) is None


def test_without_a_record_timestamp_the_future_check_is_skipped() -> None:
    assert violation(make_event(occurred_at=datetime(2100, 1, 1, tzinfo=UTC))) is None


def test_an_event_dated_2100_is_refused_when_read_from_a_topic_today() -> None:
    event = make_event(occurred_at=datetime(2100, 1, 1, tzinfo=UTC))
    found = violation(event, record_timestamp_ms=millis(WHEN))
    assert found is not None and found.reason == "event_time_in_future"


def test_limits_are_configurable_and_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOBTRAIL_CONTRACT_MAX_FUTURE_SKEW_S", "60")
    monkeypatch.setenv("JOBTRAIL_CONTRACT_MAX_NAME_BYTES", "8")
    limits = ContractLimits()
    assert limits.max_future_skew_s == 60 and limits.max_name_bytes == 8
    event = make_event(occurred_at=WHEN, job_name="send-email")
    found = violation(event, limits=limits)
    assert found is not None and "job_name is 10, the limit is 8" in found.detail
    late = make_event(occurred_at=WHEN, job_name="short")
    found = violation(late, record_timestamp_ms=millis(WHEN) - 61_000, limits=limits)
    assert found is not None and found.reason == "event_time_in_future"
    with pytest.raises(ValueError, match="frozen"):
        limits.max_name_bytes = 9  # type: ignore[misc]


def test_decode_errors_have_reasons_too() -> None:
    assert decode_violation(UnknownSchemaError("fp 00")).reason == "unknown_schema"
    assert decode_violation(CorruptMessageError("short")).reason == "undecodable"


@given(events)
def test_reasons_come_from_the_fixed_vocabulary(event: JobEvent) -> None:
    found = violation(event, record_timestamp_ms=millis(WHEN))
    assert found is None or found.reason in REASONS
