"""The projector's edges without a broker: contract checks on decode, Redis error typing, and
the bounds of what the Redis script stores."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

import pytest
import redis
from confluent_kafka import TIMESTAMP_CREATE_TIME, Message

from processors.validation import MAX_ERROR_BYTES, MAX_PAYLOAD_BYTES, violation
from projections.model import Position
from projections.ports import StoreFaultError, StoreUnavailableError
from projections.redis import event_row, typed_error
from projections.sources import decode_batch
from schemas.codec import SingleObjectCodec
from schemas.job_event import JobError, JobEventType
from tests.factories import make_event

CODEC = SingleObjectCodec()
NOW_MS = int(datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp() * 1000)


class StubMessage:
    """The part of confluent_kafka.Message decode_batch reads (no broker in unit tests)."""

    def __init__(self, offset: int, value: bytes, timestamp_ms: int = NOW_MS) -> None:
        self._offset, self._value, self._timestamp = offset, value, timestamp_ms

    def topic(self) -> str:
        return "t.job-events"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return TIMESTAMP_CREATE_TIME, self._timestamp


def messages(*values: bytes) -> Sequence[Message]:
    return cast(Sequence[Message], [StubMessage(i, v) for i, v in enumerate(values)])


def test_events_that_break_the_contract_become_position_only_items() -> None:
    good = make_event()
    future = make_event(event_id="e2", occurred_at=datetime(2100, 1, 1, tzinfo=UTC))
    big = make_event(event_id="e3", type=JobEventType.QUEUED, error=None,
                     data="x" * (MAX_PAYLOAD_BYTES + 1))  # fmt: skip
    batch = messages(*(CODEC.encode(e) for e in (good, future, big)), b"not avro")
    decoded = decode_batch(batch, CODEC)
    assert [event for _, event in decoded.items] == [good, None, None, None]
    assert [p.offset for p, _ in decoded.items] == [0, 1, 2, 3]
    assert decoded.undecodable == 1
    assert dict(decoded.rejected) == {"event_time_in_future": 1, "oversized_field": 1}
    assert decoded.skipped == 3  # what a rebuild counts as undecodable or refused


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'"),
        redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
        redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
        redis.exceptions.ResponseError("BUSY Redis is busy running a script."),
        redis.exceptions.MasterDownError("Link with MASTER is down"),
        redis.exceptions.TryAgainError("Multiple keys request during rehashing of slot"),
        redis.exceptions.ClusterDownError("The cluster is down"),
        redis.exceptions.ResponseError("MISCONF Redis is configured to save RDB snapshots"),
        redis.ConnectionError("Connection refused"),
        redis.TimeoutError("Timeout reading from socket"),
    ],
)
def test_transient_redis_errors_are_retryable(error: Exception) -> None:
    typed = typed_error(error)
    assert type(typed) is StoreUnavailableError and typed.retryable


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ResponseError("WRONGTYPE Operation against a key holding the wrong kind"),
        redis.exceptions.ResponseError("ERR user_script:12: attempt to compare nil with number"),
    ],
)
def test_other_error_replies_are_faults(error: Exception) -> None:
    assert isinstance(typed_error(error), StoreFaultError)


def test_noscript_and_foreign_errors_pass_through() -> None:
    assert typed_error(redis.exceptions.NoScriptError("No matching script")) is None
    assert typed_error(ValueError("not redis")) is None


def test_what_the_redis_script_stores_is_bounded_by_the_contract() -> None:
    # The largest events the contract lets through: every stored string stays within a bound.
    queued = make_event(type=JobEventType.QUEUED, error=None, data="d" * MAX_PAYLOAD_BYTES)
    half = MAX_ERROR_BYTES // 2
    failed = make_event(
        error=JobError("E", "id=1 " * (half // 5), "  at f (a.py:1)\n" * (half // 16))
    )
    for event in (queued, failed):
        assert violation(event, record_timestamp_ms=NOW_MS) is None
    queued_row = event_row(Position("t", 0, 0), queued)
    failed_row = event_row(Position("t", 0, 1), failed)
    assert len(queued_row[9]) <= MAX_PAYLOAD_BYTES  # data
    assert len(failed_row[14]) <= 4 * MAX_ERROR_BYTES  # the template: masking may lengthen
    assert all(len(field) <= 256 for field in failed_row[3:9])  # ids, names, queue, worker


def test_the_row_carries_the_event_id_for_the_scripts_guard() -> None:
    event = make_event(event_id="abc")
    assert event_row(Position("t", 0, 0), event)[15] == "abc"
    assert len(event_row(Position("t", 0, 0), None)) == 16
