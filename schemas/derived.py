"""The records derived from job-events: vectorization requests, attempt outcomes and error
vectors. Avro single-object encoded like JobEvent (schemas/*.avsc), frozen dataclasses in Python.

Times are milliseconds since the epoch here (the wire resolution, exact integers): the derivations
compare and subtract them, and `from_millis` turns them into datetimes where people read them.
"""

from __future__ import annotations

import json
import sys
from array import array
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

from jobtrail.errors import CorruptMessageError
from schemas.codec import SingleObjectCodec
from schemas.job_event import millis


class AttemptOutcomeType(StrEnum):
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STALLED = "STALLED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class VectorizeRequest:
    """Embed `template` with `model`. Kafka key: `fingerprint`."""

    fingerprint: str
    template: str
    sample: str
    model: str
    first_seen_ms: int


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """How one attempt ended. Kafka key: `job_id`."""

    job_id: str
    job_name: str
    attempt: int
    outcome: AttemptOutcomeType
    terminal: bool
    started_at_ms: int | None
    ended_at_ms: int
    worker: str | None
    error_fingerprint: str | None
    concurrent_on_worker: int | None
    concurrent_for_job_name: int

    @property
    def duration_ms(self) -> int | None:
        return None if self.started_at_ms is None else self.ended_at_ms - self.started_at_ms


@dataclass(frozen=True, slots=True)
class ErrorVector:
    """One template's embedding by one model. Kafka key: `error_vector_key(fingerprint, model)`
    (the topic is compacted: the latest vector per fingerprint and model stays)."""

    fingerprint: str
    model: str
    vector: tuple[float, ...]
    truncated: bool = False

    @property
    def dimension(self) -> int:
        return len(self.vector)


def error_vector_key(fingerprint: str, model: str) -> bytes:
    return f"{fingerprint}:{model}".encode()


def _to_millis(value: Any) -> Any:
    return millis(value) if isinstance(value, datetime) else value


@cache
def _codec(name: str) -> SingleObjectCodec:
    text = resources.files("schemas").joinpath(f"{name}.avsc").read_text(encoding="utf-8")
    return SingleObjectCodec(json.loads(text))


def encode_vectorize_request(request: VectorizeRequest) -> bytes:
    record = asdict(request)
    record["first_seen"] = record.pop("first_seen_ms")
    return _codec("vectorize_request").encode_record(record)


def decode_vectorize_request(data: bytes) -> VectorizeRequest:
    record = _codec("vectorize_request").decode_record(data)
    return VectorizeRequest(
        fingerprint=record["fingerprint"],
        template=record["template"],
        sample=record["sample"],
        model=record["model"],
        first_seen_ms=_to_millis(record["first_seen"]),
    )


def encode_attempt_outcome(outcome: AttemptOutcome) -> bytes:
    record = asdict(outcome)
    record["started_at"] = record.pop("started_at_ms")
    record["ended_at"] = record.pop("ended_at_ms")
    record["duration_ms"] = outcome.duration_ms
    return _codec("attempt_outcome").encode_record(record)


def decode_attempt_outcome(data: bytes) -> AttemptOutcome:
    record = _codec("attempt_outcome").decode_record(data)
    return AttemptOutcome(
        job_id=record["job_id"],
        job_name=record["job_name"],
        attempt=record["attempt"],
        outcome=AttemptOutcomeType(record["outcome"]),
        terminal=record["terminal"],
        started_at_ms=_to_millis(record["started_at"]),
        ended_at_ms=_to_millis(record["ended_at"]),
        worker=record["worker"],
        error_fingerprint=record["error_fingerprint"],
        concurrent_on_worker=record["concurrent_on_worker"],
        concurrent_for_job_name=record["concurrent_for_job_name"],
    )


def encode_error_vector(vector: ErrorVector) -> bytes:
    record = {
        "fingerprint": vector.fingerprint,
        "model": vector.model,
        "dimension": vector.dimension,
        "vector": array("f", vector.vector).tobytes()
        if sys.byteorder == "little"
        else _swapped(array("f", vector.vector)),
        "truncated": vector.truncated,
    }
    return _codec("error_vector").encode_record(record)


def decode_error_vector(data: bytes) -> ErrorVector:
    record = _codec("error_vector").decode_record(data)
    values = array("f")
    values.frombytes(record["vector"])
    if sys.byteorder != "little":
        values.byteswap()
    if len(values) != record["dimension"]:
        raise CorruptMessageError(
            f"error vector of dimension {record['dimension']} holds {len(values)} floats"
        )
    return ErrorVector(record["fingerprint"], record["model"], tuple(values), record["truncated"])


def _swapped(values: array[float]) -> bytes:
    values.byteswap()  # the wire is little-endian whatever the machine
    return values.tobytes()
