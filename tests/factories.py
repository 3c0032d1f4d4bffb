"""Test data: JobEvents built by hand or drawn by hypothesis."""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta

from hypothesis import strategies as st

from projections.model import Position
from schemas.job_event import EPOCH, JobError, JobEvent, JobEventType


def make_event(**overrides: object) -> JobEvent:
    fields: dict[str, object] = {
        "event_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "job_id": "job-1",
        "job_name": "send-email",
        "type": JobEventType.FAILED,
        "attempt": 2,
        "occurred_at": datetime.fromisoformat("2026-03-01T12:00:00.123+00:00"),
        "queue": "emails",
        "max_attempts": 5,
        "worker": "worker-01",
        "source": "sdk",
        "error": JobError("TimeoutError", "timed out after 3000 ms", "Traceback ..."),
        "will_retry": True,
        "attributes": {"tenant": "t-1"},
    }
    fields.update(overrides)
    return JobEvent(**fields)  # type: ignore[arg-type]


_text = st.text(max_size=40)
_optional_text = st.none() | _text
_int32 = st.integers(-(2**31), 2**31 - 1)
_millis = st.integers(0, 4_102_444_800_000).map(lambda ms: EPOCH + timedelta(milliseconds=ms))

errors = st.builds(JobError, type=_text, message=_text, stack=_optional_text)

events = st.builds(
    JobEvent,
    event_id=_text,
    job_id=_text,
    job_name=_text,
    type=st.sampled_from(JobEventType),
    attempt=_int32,
    occurred_at=_millis,
    queue=_optional_text,
    max_attempts=st.none() | _int32,
    worker=_optional_text,
    source=_optional_text,
    data=_optional_text,
    progress=st.none() | st.floats(allow_nan=False),
    result=_optional_text,
    error=st.none() | errors,
    will_retry=st.none() | st.booleans(),
    attributes=st.dictionaries(_text, _text, max_size=4),
)


def positioned(
    events: list[JobEvent], partitions: int = 6, topic: str = "t.job-events"
) -> list[tuple[Position, JobEvent]]:
    """Gives events log positions as Kafka would: one partition per job, offsets in order."""
    next_offset = [0] * partitions
    result = []
    for event in events:
        partition = zlib.crc32(event.job_id.encode()) % partitions
        result.append((Position(topic, partition, next_offset[partition]), event))
        next_offset[partition] += 1
    return result
